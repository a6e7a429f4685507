# tests/validator.mk: the validator tests.
