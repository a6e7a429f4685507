/* schema.h: the SQL migrations of schema/, embedded at build time (schema/embed.sh).
 * kw_migrations[i] brings a database from user_version i to i + 1. */
#ifndef KW_SCHEMA_H
#define KW_SCHEMA_H

extern const char *const kw_migrations[];
extern const unsigned kw_migrations_count;

#endif
