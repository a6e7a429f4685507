/* store_sql.h: the SQL conditions that the store's files share, each written once.
 *
 * Private to lib/store*.c (and the lib/ files that still hold SQL until they move there): a
 * caller outside the store never sees SQL. Each macro takes the alias of the table it tests
 * and, where time matters, the SQL parameter that holds "now" (e.g. "?2"). */
#ifndef KW_STORE_SQL_H
#define KW_STORE_SQL_H

/* The role whose members see and manage every token of their account. */
#define KW_ADMIN_ROLE "Administrators"
#define KW_SQL_ADMIN_ROLE "'" KW_ADMIN_ROLE "'"

/* Token t has not expired at `now` (never-expiring tokens never do). */
#define KW_SQL_TOKEN_UNEXPIRED(t, now) "(" t ".expires IS NULL OR " t ".expires > " now ")"

/* Token t is live at `now`: not deleted and not expired. Whether its issuer is enabled is a
 * separate question (KW_SQL_USER_ENABLED): the rule's review lists the live tokens of disabled
 * users too. */
#define KW_SQL_TOKEN_LIVE(t, now) "(" t ".deleted IS NULL AND " KW_SQL_TOKEN_UNEXPIRED(t, now) ")"

/* User u is enabled locally. */
#define KW_SQL_USER_ENABLED(u) "(" u ".enabled = 1)"

/* Token t, issued by user u, validates at `now`: live and its issuer enabled. */
#define KW_SQL_TOKEN_VALID(t, u, now)                                                              \
	"(" KW_SQL_TOKEN_LIVE(t, now) " AND " KW_SQL_USER_ENABLED(u) ")"

/* User u is an SSO user whose SSO access was revoked. */
#define KW_SQL_REVOKED_SSO(u) "(" u ".source = 'sso' AND coalesce(" u ".sso_state, '') = 'revoked')"

#endif
