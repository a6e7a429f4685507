/* secret.c: reading secret files and checking private folders (see secret.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "secret.h"

/* The owner and mode rule shared by files and folders. */
static int check_owner_mode(const struct stat *st, const char **error_r)
{
	if (st->st_uid != geteuid() && st->st_uid != 0) {
		*error_r = "belongs to another user (want this user or root)";
		return -EPERM;
	}
	if ((st->st_mode & 0077) != 0) {
		*error_r =
			S_ISDIR(st->st_mode)
				? "is open to other users (want mode 0700: chmod 700)"
				: "is readable or writable by others (want mode 0600: chmod 600)";
		return -EPERM;
	}
	return 0;
}

static const char *open_error(int err)
{
	switch (err) {
	case ENOENT:
		return "is missing";
	case ELOOP:
		return "is a symbolic link";
	case EACCES:
		return "cannot be opened: permission denied";
	default:
		return "cannot be opened";
	}
}

/* Returns an open, checked descriptor or a negative code. */
static int open_checked(const char *path, struct stat *st, const char **error_r)
{
	int fd, ret;

	/* O_NONBLOCK: open() of a FIFO would wait for a writer before fstat() could refuse
	 * it. It changes nothing for the regular file we then insist on. */
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		ret = -errno;
		*error_r = open_error(errno);
		return ret;
	}
	if (fstat(fd, st) < 0) {
		ret = -errno;
		*error_r = "cannot be examined";
	} else if (!S_ISREG(st->st_mode)) {
		ret = -EINVAL;
		*error_r = "is not a regular file";
	} else if ((ret = check_owner_mode(st, error_r)) == 0) {
		return fd;
	}
	close(fd);
	return ret;
}

int kw_secret_file_check(const char *path, struct stat *st_r, const char **error_r)
{
	struct stat st;
	int ret;

	/* lstat(), never open(): closing any descriptor of a file drops every POSIX lock that
	 * this process holds on it, and the database's other connections in this process (ssod's
	 * workers) would lose the locks that SQLite relies on. Nothing is read here, so nothing
	 * can block or be fed either. */
	if (lstat(path, &st) < 0) {
		ret = -errno;
		*error_r = open_error(errno);
		return ret;
	}
	if (S_ISLNK(st.st_mode)) {
		*error_r = open_error(ELOOP);
		return -ELOOP;
	}
	if (!S_ISREG(st.st_mode)) {
		*error_r = "is not a regular file";
		return -EINVAL;
	}
	if ((ret = check_owner_mode(&st, error_r)) < 0)
		return ret;
	if (st_r != NULL)
		*st_r = st;
	return 0;
}

int kw_secret_file_read(const char *path, void *buf, size_t size, size_t *len_r,
			const char **error_r)
{
	struct stat st;
	size_t len = 0;
	int fd, ret = 0;

	fd = open_checked(path, &st, error_r);
	if (fd < 0)
		return fd;
	for (;;) {
		char extra;
		ssize_t n =
			len < size ? read(fd, (char *)buf + len, size - len) : read(fd, &extra, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -EIO;
			*error_r = "cannot be read";
			break;
		}
		if (n == 0)
			break;
		if (len == size) {
			ret = -EFBIG;
			*error_r = "is larger than expected";
			break;
		}
		len += (size_t)n;
	}
	close(fd);
	if (ret < 0) {
		OPENSSL_cleanse(buf, size);
		return ret;
	}
	*len_r = len;
	return 0;
}

int kw_secret_dir_check(const char *path, const char **error_r)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		int ret = -errno;
		*error_r = open_error(errno);
		return ret;
	}
	if (!S_ISDIR(st.st_mode)) {
		*error_r = "is not a folder";
		return -ENOTDIR;
	}
	return check_owner_mode(&st, error_r);
}
