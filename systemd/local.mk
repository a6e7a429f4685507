# systemd/: the system user, group and folders shared by the units of every part (the units
# themselves are installed by the part they start).
sysusersdir = $(prefix)/lib/sysusers.d
tmpfilesdir = $(prefix)/lib/tmpfiles.d
dist_sysusers_DATA = systemd/sysusers.d/keywarden.conf
dist_tmpfiles_DATA = systemd/tmpfiles.d/keywarden.conf
TESTS += tests/systemd_units.sh
EXTRA_DIST += tests/systemd_units.sh
