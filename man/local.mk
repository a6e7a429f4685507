# man/: the manual pages of the lead's parts; each part adds its own in its fragment.
dist_man_MANS += man/keywarden.1 man/keywarden.conf.5
