# validator/: the keywarden-validator daemon.
