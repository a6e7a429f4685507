# tests/page.mk: the API tokens pages of keywarden-ssod (issue 12) in a real browser: headless
# Chromium driven by Selenium (Debian's chromium, chromium-driver, python3-selenium; one
# browser for the whole test, about 20 s), signed in through the lasso IdP and /saml/acs.
TESTS += tests/page/browser.py
EXTRA_DIST += tests/page/browser.py tests/page/demo_idp.py \
	doc/screenshots/tokens.png doc/screenshots/create.png doc/screenshots/secret.png \
	doc/screenshots/review.png doc/screenshots/tokens-narrow.png
