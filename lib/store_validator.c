/* store_validator.c: the store functions of a long-lived reader, keywarden-validator (see
 * store_validator.h): change and replacement watching, lock waits, batched last uses.
 *
 * SQLite mechanisms behind the concepts: "changed by someone else" is PRAGMA data_version
 * (which moves when another connection commits, not for our own commits), skipped while the
 * WAL-index header in shared memory shows that nobody committed (below); "still the same
 * database" is the device and inode of the configured path against those taken when the
 * watch started, and SQLite's own SQLITE_FCNTL_HAS_MOVED (which compares the path with the
 * file descriptor it really holds) at that start, so that a file replaced between the open
 * and the watch is caught too. The path is stat()ed when an inotify watch on its folder
 * reported anything, and at least every STAT_EVERY_MS.
 *
 * Why skipping PRAGMA data_version is sound. A poll runs on every wakeup with requests, after
 * they were read; the query costs an SQLite read transaction (two fcntl() locks on the -shm
 * file and the VM). In WAL mode, a commit becomes visible to readers only when the writer
 * publishes the WAL-index header at the start of the -shm file (SQLite's wal.c,
 * walIndexWriteHdr(): two copies of a 48-byte WalIndexHdr at offsets 0 and 48, in the host's
 * byte order: iVersion, unused, iChange (+1 per commit), isInit, bigEndCksum, szPage,
 * mxFrame, nPage, aFrameCksum[2], aSalt[2], aCksum[2]). The writer stores copy 1, then a
 * memory barrier, then copy 0; a reader (walIndexTryHdr()) loads copy 0, a barrier, copy 1,
 * and trusts them only when they are equal; a reader whose header equals the one it read
 * last sees no change (that is exactly when data_version stays). We read both copies the same
 * way, without locks, from the memory our own connection reads them from, then:
 *   - at every real poll, the header is read BEFORE the query and kept (when both copies are
 *     equal and initialised), so the kept header is no newer than the state the query saw;
 *   - a later poll answers UNCHANGED without the query only when both copies are equal to
 *     each other and to the kept one. Every commit increments iChange and moves mxFrame and
 *     the running frame checksum; a checkpoint that restarts or truncates the WAL increments
 *     salt-1 and draws a new salt-2 (so a commit after it that ends at the same frame number
 *     still differs). The only other writer of the header, recovery (after a writer died
 *     between its two copies), rebuilds it from the WAL file with iChange 0: equal to the
 *     kept header only when it found the same salts, frame count and running checksum, that
 *     is the same committed state. So an equal header means that no commit was published
 *     since the kept header was read, hence none since the query that validated the cache
 *     (the cache may hold rows read after that query: they are no older than the header).
 *     A torn read (a writer between its two copies) makes the copies differ: real poll.
 *   - a commit whose sqlite3_step() returned before its client sent a CHECK stored its header
 *     before that send; we load the header after reading the CHECK from the socket (the send,
 *     the socket's locks and our recv() order the stores before our loads, and an acquire
 *     fence keeps our loads after the recv()), so we see the new header and run the query.
 *   - the mapping is trusted only in WAL mode, checked once when the watch starts: another
 *     process cannot take the database out of WAL mode while our connection is open (that
 *     needs an exclusive lock on the database file, and a WAL-mode connection keeps a shared
 *     one between transactions), so commits keep going through the -shm file.
 *   - anything unexpected (no WAL index, another version, copies that differ, a failed query)
 *     means a real poll, as before.
 * That memory is SQLite's own mapping of the -shm file: SQLITE_FCNTL_FILE_POINTER gives the
 * database's sqlite3_file, whose VFS method xShmMap() returns region 0 as the connection
 * mapped it (taken again after every real poll, once the connection's read transaction has
 * opened the WAL index). Not a mapping of our own through a second open() of the -shm file:
 * closing that descriptor would drop every fcntl() lock the process holds on the file,
 * SQLite's included (POSIX locks belong to the process and the inode), and another process
 * would then see the WAL index unused, truncate it and start it again under us (the first
 * version did that: a SIGBUS). It is always the -shm file of the database our connection has
 * open, also after a replacement (the reopen starts a new watch). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "audit.h"
#include "store_lease.h"
#include "store_private.h"
#include "store_validator.h"

/* The WAL-index header (SQLite's wal.c, "WAL-Index Format" in fileformat2): two copies of a
 * 48-byte WalIndexHdr, read as 32-bit words. */
#define WAL_HDR_WORDS 12
#define WAL_INDEX_REGION 32768  /* SQLite maps the WAL index in regions of this size */
#define WAL_HDR_VERSION 3007000 /* iVersion, word 0 */
#define WAL_HDR_INIT_WORD 3     /* isInit is the first byte of word 3 */

/* A coarse monotonic clock (no TSC read: this runs on every poll) in milliseconds. */
static int64_t coarse_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The path is stat()ed at least this often even when inotify reported nothing, for what a
 * watch on the folder cannot see (a parent folder renamed, a mount). */
#define STAT_EVERY_MS 1000

struct kw_store_watch {
	struct kw_store *store;
	char *path;
	dev_t dev;
	ino_t ino;
	bool replaced; /* sticky: the caller reopens and starts a new watch */
	bool polled;
	int64_t version;
	struct kw_store_lease *lease; /* PostgreSQL: the lease (store_lease.c), no file */

	/* Replacement: an inotify watch on the path's folder (-1: none, stat() every poll) and
	 * the time of the next stat() due anyway. */
	int notify_fd;
	int64_t stat_due_ms;

	/* Changes: the WAL-index header in our connection's mapping (NULL: not in WAL mode,
	 * or not mapped yet) and its copy read before the last real poll (kept: valid). */
	bool wal;
	const uint32_t *shm;
	bool kept;
	uint32_t hdr[WAL_HDR_WORDS];
};

static const char data_version_sql[] = "PRAGMA data_version";

void kw_store_lock_wait(struct kw_store *store, unsigned ms)
{
	char sql[64];

	if (kw_store_is_pg(store)) {
		snprintf(sql, sizeof(sql), "SET lock_timeout = %u", ms);
		(void)kw_db_exec(kw_store_db(store), sql);
		return;
	}
	sqlite3_busy_timeout(kw_store_sqlite(store), ms > INT32_MAX ? INT32_MAX : (int)ms);
}

const char *kw_store_db_error(struct kw_store *store)
{
	return kw_db_errmsg(kw_store_db(store));
}

/* Reads the header's two copies as SQLite's readers do (copy 0, a barrier, copy 1) into hdr;
 * true when they are equal and initialised. The fence before the loads keeps them after the
 * recv() that read the requests this poll is for. */
static bool wal_hdr_read(const struct kw_store_watch *w, uint32_t hdr[WAL_HDR_WORDS])
{
	uint32_t copy1[WAL_HDR_WORDS];
	uint8_t init;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	for (size_t i = 0; i < WAL_HDR_WORDS; i++)
		hdr[i] = __atomic_load_n(&w->shm[i], __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	for (size_t i = 0; i < WAL_HDR_WORDS; i++)
		copy1[i] = __atomic_load_n(&w->shm[WAL_HDR_WORDS + i], __ATOMIC_RELAXED);
	memcpy(&init, &hdr[WAL_HDR_INIT_WORD], 1);
	return memcmp(hdr, copy1, sizeof(copy1)) == 0 && hdr[0] == WAL_HDR_VERSION && init == 1;
}

/* The WAL index's first region as our connection maps it, or NULL. xShmMap() with bExtend 0
 * maps nothing new: it returns the region the connection already has. */
static const uint32_t *wal_hdr_find(sqlite3 *db)
{
	sqlite3_file *file = NULL;
	void volatile *region = NULL;

	if (sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &file) != SQLITE_OK ||
	    file == NULL || file->pMethods == NULL || file->pMethods->iVersion < 2 ||
	    file->pMethods->xShmMap == NULL ||
	    file->pMethods->xShmMap(file, 0, WAL_INDEX_REGION, 0, &region) != SQLITE_OK)
		return NULL;
	return (const uint32_t *)(uintptr_t)region;
}

/* True when the connection is in WAL mode (see the top of the file for why that lasts). */
static bool wal_mode(sqlite3 *db)
{
	sqlite3_stmt *stmt;
	bool wal = false;

	if (sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, NULL) != SQLITE_OK)
		return false;
	if (sqlite3_step(stmt) == SQLITE_ROW) {
		const char *mode = (const char *)sqlite3_column_text(stmt, 0);
		wal = mode != NULL && strcasecmp(mode, "wal") == 0;
	}
	sqlite3_finalize(stmt);
	return wal;
}

/* Starts the inotify watch on the folder of w->path (before the path's identity is taken, so
 * that a replacement after that is reported); without it every poll stat()s. */
static void notify_start(struct kw_store_watch *w)
{
	char *dir = strdup(w->path);
	char *slash;

	if (dir == NULL)
		abort();
	slash = strrchr(dir, '/');
	if (slash == NULL)
		strcpy(dir, ".");
	else
		slash[slash == dir ? 1 : 0] = '\0';
	w->notify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->notify_fd >= 0 &&
	    inotify_add_watch(w->notify_fd, dir,
			      IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF |
				      IN_MOVE_SELF | IN_ONLYDIR) < 0) {
		close(w->notify_fd);
		w->notify_fd = -1;
	}
	free(dir);
}

/* Whether the path must be stat()ed now: inotify reported something in the folder (rare:
 * SQLite creates its -wal and -shm files once), or cannot watch, or STAT_EVERY_MS passed.
 * Reads the inotify queue empty. inotify queues a rename's event before rename() returns, so
 * a replacement finished before a client sent its request is in the queue when we read it,
 * after that request. */
static bool stat_due(struct kw_store_watch *w)
{
	union {
		struct inotify_event ev;
		char buf[4096];
	} u;
	bool due = w->notify_fd < 0 || coarse_ms() >= w->stat_due_ms;

	while (w->notify_fd >= 0) {
		ssize_t n = read(w->notify_fd, u.buf, sizeof(u.buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		due = true;
		if (n <= 0) {
			close(w->notify_fd);
			w->notify_fd = -1;
			break;
		}
		for (ssize_t off = 0; off < n;) {
			const struct inotify_event *ev = (const void *)(u.buf + off);

			/* The folder itself moved or went away: its later events would be
			 * another folder's (or none); stat() every poll from now on. */
			if ((ev->mask &
			     (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_UNMOUNT)) != 0) {
				close(w->notify_fd);
				w->notify_fd = -1;
				break;
			}
			off += (ssize_t)(sizeof(*ev) + ev->len);
		}
	}
	return due;
}

int kw_store_watch_new(struct kw_store *store, struct kw_store_watch **watch_r,
		       const char **error_r)
{
	sqlite3 *db = kw_store_sqlite(store);
	const char *path = db != NULL ? sqlite3_db_filename(db, "main") : NULL;
	struct kw_store_watch *w;
	struct stat st;
	int moved = 0;

	if (kw_store_is_pg(store)) {
		w = calloc(1, sizeof(*w));
		if (w == NULL)
			abort();
		w->store = store;
		w->notify_fd = -1;
		w->lease = kw_store_lease_new(store);
		*watch_r = w;
		return 0;
	}
	if (path == NULL || path[0] == '\0') {
		*error_r = "the database has no file to watch";
		return -EIO;
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL || (w->path = strdup(path)) == NULL)
		abort(); /* programs, not libraries: out of memory ends them */
	w->store = store;
	w->wal = wal_mode(db);
	notify_start(w);
	w->stat_due_ms = coarse_ms() + STAT_EVERY_MS;
	if (stat(w->path, &st) < 0) {
		w->replaced = true;
	} else {
		w->dev = st.st_dev;
		w->ino = st.st_ino;
	}
	if (sqlite3_file_control(db, "main", SQLITE_FCNTL_HAS_MOVED, &moved) == SQLITE_OK &&
	    moved != 0)
		w->replaced = true;
	*watch_r = w;
	return 0;
}

void kw_store_watch_free(struct kw_store_watch **watchp)
{
	struct kw_store_watch *w = *watchp;

	if (w == NULL)
		return;
	kw_store_lease_free(&w->lease);
	if (w->notify_fd >= 0)
		close(w->notify_fd);
	free(w->path);
	free(w);
	*watchp = NULL;
}

enum kw_store_change kw_store_watch_poll(struct kw_store_watch *w)
{
	uint32_t hdr[WAL_HDR_WORDS];
	bool hdr_valid = false;
	struct stat st;
	struct kw_db_stmt *stmt;
	int64_t v;

	if (w->replaced)
		return KW_STORE_REPLACED;
	if (w->lease != NULL)
		return kw_store_lease_poll(w->lease);
	if (stat_due(w)) {
		w->stat_due_ms = coarse_ms() + STAT_EVERY_MS;
		if (stat(w->path, &st) < 0 || st.st_dev != w->dev || st.st_ino != w->ino) {
			w->replaced = true;
			return KW_STORE_REPLACED;
		}
	}
	if (w->shm != NULL) {
		hdr_valid = wal_hdr_read(w, hdr);
		if (hdr_valid && w->kept && memcmp(hdr, w->hdr, sizeof(hdr)) == 0)
			return KW_STORE_UNCHANGED; /* nobody published a commit since */
	}
	w->kept = false; /* until the query below succeeds */
	stmt = kw_store_stmt(w->store, data_version_sql);
	if (stmt == NULL)
		return KW_STORE_CHANGED;
	if (kw_db_step(stmt) != KW_DB_ROW) {
		kw_db_reset(stmt);
		w->polled = false; /* whatever comes next counts as a change */
		return KW_STORE_CHANGED;
	}
	v = kw_db_column_int64(stmt, 0);
	kw_db_reset(stmt);
	if (hdr_valid) {
		/* Read before the query: no newer than what the query saw. */
		memcpy(w->hdr, hdr, sizeof(hdr));
		w->kept = true;
	}
	if (w->wal)
		w->shm =
			wal_hdr_find(kw_store_sqlite(w->store)); /* our read opened the WAL index */
	if (w->polled && v == w->version)
		return KW_STORE_UNCHANGED;
	w->polled = true;
	w->version = v;
	return KW_STORE_CHANGED;
}

/* The lease exists on PostgreSQL only: an SQLite watch has no descriptor, no timer, and its
 * cache is always held (its poll before each batch of answers is enough). */
bool kw_store_watch_leased(const struct kw_store_watch *w)
{
	return w->lease != NULL;
}

void kw_store_watch_set_lease(struct kw_store_watch *w, unsigned ms)
{
	if (w->lease != NULL)
		kw_store_lease_set_ms(w->lease, ms);
}

int kw_store_watch_fd(struct kw_store_watch *w)
{
	return w->lease != NULL ? kw_store_lease_fd(w->lease) : -1;
}

void kw_store_watch_input(struct kw_store_watch *w)
{
	if (w->lease != NULL)
		kw_store_lease_input(w->lease);
}

int kw_store_watch_timeout(struct kw_store_watch *w)
{
	return w->lease != NULL ? kw_store_lease_timeout(w->lease) : -1;
}

bool kw_store_watch_held(struct kw_store_watch *w)
{
	return w->lease == NULL || kw_store_lease_held(w->lease);
}

int kw_store_token_uses_write(struct kw_store *store, const struct kw_token_use *uses, size_t n,
			      const struct kw_store_event *event, const char **error_r)
{
	int ret = 0;

	/* Last uses alone need not wait for the disk; a failed-check event must (its journal copy
	 * must never outlive it). */
	if ((event != NULL ? kw_store_begin(store) : kw_store_begin_batch(store)) < 0)
		return kw_store_db_fail(store, error_r, "cannot start a transaction");
	for (size_t i = 0; i < n && ret == 0; i++) {
		if (uses[i].token_id != 0)
			ret = kw_store_token_touch(store, uses[i].token_id, uses[i].when,
						   uses[i].ip[0] != '\0' ? uses[i].ip : NULL);
	}
	if (ret == 0 && event != NULL)
		ret = kw_audit_append(store, event->time, event->actor, event->action,
				      event->target, event->details);
	if (ret == 0 && kw_store_commit(store) < 0)
		ret = -EIO;
	if (ret < 0) {
		ret = kw_store_db_fail(store, error_r, "cannot write last uses");
		kw_store_rollback(store);
	}
	return ret;
}
