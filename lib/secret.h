/* secret.h: reading the files that hold secrets (the digest key, the SMTP password, [sso]
 * sp_key) and checking the database and the folders that hold them.
 *
 * The files are opened without following a symbolic link and without blocking (O_NOFOLLOW |
 * O_NONBLOCK: a FIFO or a device put in their place can neither hang the program nor feed
 * it), then checked as open files, as pam_u2f does with its authfile: a regular file, owned
 * by the effective user or by root, with no permission bits for group or others (0600 or
 * 0400). Only then are they read.
 *
 * Errors: 0 or a negative errno-style code, with a short phrase through error_r that names
 * neither the file nor its role (callers put those in front: "key file " + "is missing"):
 *   -ENOENT  missing
 *   -ELOOP   a symbolic link
 *   -EINVAL  not a regular file (FIFO, device, socket, folder)
 *   -ENOTDIR not a folder (kw_secret_dir_check())
 *   -EPERM   owned by another user, or open to group or others
 *   -EFBIG   larger than the caller's buffer
 *   -EACCES, -EIO ...  cannot be opened or read
 * The phrases are string constants. Thread-safe. */
#ifndef KW_SECRET_H
#define KW_SECRET_H

#include <stddef.h>
#include <sys/stat.h>

/* Reads the file at path, whole, into buf (size bytes) and writes its length to *len_r. On
 * failure buf is wiped. The caller owns buf and wipes it after use (OPENSSL_cleanse). */
int kw_secret_file_read(const char *path, void *buf, size_t size, size_t *len_r,
			const char **error_r);

/* Checks the file as kw_secret_file_read() does, by lstat() and without opening it (closing
 * a descriptor would drop this process's POSIX locks on the file: SQLite's, for the
 * database); its status goes to *st_r (may be NULL). For files that another library opens by
 * name ([sso] sp_key, with its own open) and for the database (which SQLite opens with
 * O_NOFOLLOW). */
int kw_secret_file_check(const char *path, struct stat *st_r, const char **error_r);

/* Checks that path is a folder fit to hold secrets and the database (a symbolic link to one
 * is followed): owned by the effective user or by root, with no permission bits for group or
 * others (0700). */
int kw_secret_dir_check(const char *path, const char **error_r);

#endif
