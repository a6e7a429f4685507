# tests/pam.mk: the pam tests.
