# tests/notify.mk: the notify tests.
