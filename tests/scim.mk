# tests/scim.mk: the SCIM 2.0 receiver of keywarden-ssod (issue 13): Okta's and Entra ID's
# deactivation shapes end sessions and access tokens by the rule (the permanent token stays OK,
# the warning, the review case), reactivation, lookup by filter, paging, the bearer token and
# its throttle, hostile bodies; every answer body checked against doc/scim-schemas.json.
TESTS += tests/scim/deprovision.py tests/scim/protocol.py tests/scim/roles.py \
	tests/scim/config.py
EXTRA_DIST += tests/scim/scimtest.py tests/scim/deprovision.py tests/scim/protocol.py \
	tests/scim/roles.py tests/scim/config.py doc/scim-schemas.json

# The pure JSON of SCIM (PatchOp shapes, roles, refusals), in C.
check_PROGRAMS += tests/unit/test_scim_json
TESTS += tests/unit/test_scim_json
tests_unit_test_scim_json_SOURCES = tests/unit/test_scim_json.c ssod/scim_json.c
tests_unit_test_scim_json_CFLAGS = $(KW_CORE_CFLAGS) $(JSONC_CFLAGS) $(CMOCKA_CFLAGS) \
	$(XML_CFLAGS) $(XMLSEC_CFLAGS) -I$(top_srcdir)/ssod
tests_unit_test_scim_json_LDADD = $(KW_CORE_LIBS) $(JSONC_LIBS) $(CMOCKA_LIBS)
