/* store_reserve.c: the revocation reserve (see store.h).
 *
 * A full disk must not stop revocation: SQLite needs a few pages of WAL to commit a 'token
 * delete', and the validator, which only reads to answer, would keep accepting the token
 * meanwhile. So every program that opens the database for writing keeps a file of
 * KW_STORE_RESERVE_SIZE allocated bytes beside it; a revocation that fails with -ENOSPC
 * shrinks it by one slice and tries again. The write lock is not held between the two (the
 * store's changes take their own), so another writer may use the freed room first: that is
 * why the reserve has several slices. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "store.h"
#include "store_private.h"

static char *reserve_path(const struct kw_store *store)
{
	const char *db = kw_store_path(store);
	size_t n = strlen(db) + sizeof("-reserve");
	char *p = malloc(n);

	if (p == NULL)
		abort(); /* programs, not libraries: out of memory ends them */
	snprintf(p, n, "%s-reserve", db);
	return p;
}

void kw_store_reserve_ensure(struct kw_store *store)
{
	char *path = reserve_path(store);
	struct stat st;
	int fd, err;

	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
	if (fd < 0) {
		kw_warning("cannot create the revocation reserve %s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		kw_warning("the revocation reserve %s is not a regular file", path);
		goto out;
	}
	if (st.st_size >= KW_STORE_RESERVE_SIZE &&
	    (off_t)st.st_blocks * 512 >= KW_STORE_RESERVE_SIZE)
		goto out;
	err = posix_fallocate(fd, 0, KW_STORE_RESERVE_SIZE);
	if (err != 0)
		kw_warning("cannot allocate the revocation reserve %s (%s): until there is room "
			   "for it, a full disk can stop 'token delete' and 'user set "
			   "--disable'; free space on that disk",
			   path, strerror(err));
out:
	if (fd >= 0)
		close(fd);
	free(path);
}

int kw_store_reserve_release(struct kw_store *store)
{
	char *path;
	struct stat st;
	off_t left;
	int fd, ret = -ENOENT;

	if (kw_store_path(store) == NULL)
		return -ENOENT; /* a server's disk: its administrators' reserve, not ours */
	path = reserve_path(store);
	fd = open(path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0)
		goto out;
	left = st.st_size > KW_STORE_RESERVE_SLICE ? st.st_size - KW_STORE_RESERVE_SLICE : 0;
	if (ftruncate(fd, left) < 0) {
		ret = -errno;
		goto out;
	}
	kw_warning("the disk of %s is full: released %lld KiB of the revocation reserve %s "
		   "(%lld KiB left) to save a revocation; free space on that disk, then any "
		   "keywarden command restores the reserve",
		   kw_store_path(store), (long long)(st.st_size - left) / 1024, path,
		   (long long)left / 1024);
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	free(path);
	return ret;
}
