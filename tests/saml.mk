# tests/saml.mk: the saml tests.
