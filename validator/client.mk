# validator/: libkeywarden (libc only) and pam_keywarden.so.
pkgconfig_DATA += validator/keywarden.pc
