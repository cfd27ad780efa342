/* common/file.c: private folders and the atomic file writer (see file.h). */
#include "common/file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"

int fleet_file_mkdirs(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(tmp, path, n + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return (mkdir(tmp, mode) < 0 && errno != EEXIST) ? -1 : 0;
}

int fleet_file_atomic_open(struct fleet_file_atomic *a, const char *path, struct fleet_err *err)
{
	const char *slash = strrchr(path, '/');
	int fd;

	memset(a, 0, sizeof(*a));
	if (slash)
		a->tmp = xasprintf("%.*s/.%s.tmp.%ld", (int)(slash - path), path, slash + 1, (long)getpid());
	else
		a->tmp = xasprintf(".%s.tmp.%ld", path, (long)getpid());
	(void)unlink(a->tmp); /* a leftover of this pid's earlier crash; O_EXCL refuses anything else */
	fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, FLEET_FILE_MODE_PRIVATE);
	if (fd < 0 || !(a->f = fdopen(fd, "w"))) {
		int e = errno;

		if (fd >= 0) {
			close(fd);
			(void)unlink(a->tmp);
		}
		fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, FLEET_FILE_ERR_WRITE, "could not create %s: %s",
			      a->tmp, strerror(e));
		xfree(&a->tmp);
		return -1;
	}
	a->path = xstrdup(path);
	return 0;
}

int fleet_file_atomic_commit(struct fleet_file_atomic *a, struct fleet_err *err)
{
	int bad;

	errno = 0;
	bad = fflush(a->f) != 0 || ferror(a->f) || fsync(fileno(a->f)) != 0;
	bad |= fclose(a->f) != 0;
	a->f = NULL;
	if (!bad && rename(a->tmp, a->path) == 0) {
		xfree(&a->tmp);
		xfree(&a->path);
		return 0;
	}
	fleet_err_set(err, FLEET_ERR_PERMANENT, FLEET_SCOPE_RUN, FLEET_FILE_ERR_WRITE, "could not write %s: %s",
		      a->path, strerror(errno ? errno : EIO));
	fleet_file_atomic_abort(a);
	return -1;
}

void fleet_file_atomic_abort(struct fleet_file_atomic *a)
{
	if (a->f) {
		fclose(a->f);
		a->f = NULL;
	}
	if (a->tmp)
		(void)unlink(a->tmp);
	xfree(&a->tmp);
	xfree(&a->path);
}
