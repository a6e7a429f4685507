# ssod/: keywarden-ssod.
