# tests/scim.mk: the SCIM 2.0 receiver of keywarden-ssod (issue 13): Okta's and Entra ID's
# deactivation shapes end sessions and access tokens by the rule (the permanent token stays OK,
# the warning, the review case), reactivation, lookup by filter, paging, the bearer token and
# its throttle, hostile bodies; every answer body checked against doc/scim-schemas.json.
TESTS += tests/scim/deprovision.py tests/scim/protocol.py tests/scim/roles.py
EXTRA_DIST += tests/scim/scimtest.py tests/scim/deprovision.py tests/scim/protocol.py \
	tests/scim/roles.py doc/scim-schemas.json
