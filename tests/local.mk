# tests/: unit (cmocka), integration (real daemons in a temporary folder), pam, saml, fuzz,
# bench. Every test prints TAP.
