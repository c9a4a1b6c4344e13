//go:build linux && cgo

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/nsfs.h>

// What the constructor did, read by Go through Joined: state 1 joined,
// 0 found nothing to join, -1 failed at step (errno err).
int kiln_nsjoin_state;
int kiln_nsjoin_errno;
const char *kiln_nsjoin_step = "";
// The holder file's path, for the user that started the process.
char kiln_nsjoin_file[PATH_MAX];

static int fail(const char *step) {
	kiln_nsjoin_state = -1;
	kiln_nsjoin_errno = errno;
	kiln_nsjoin_step = step;
	return -1;
}

// holder_path writes the holder file's path into buf: in
// $XDG_RUNTIME_DIR/kiln when set to an absolute path, else in
// /tmp/kiln-run-UID. It returns the length of the directory's part.
static int holder_path(char *buf, size_t n, unsigned uid) {
	const char *x = getenv("XDG_RUNTIME_DIR");
	int d;
	if (x != NULL && x[0] == '/')
		d = snprintf(buf, n, "%s/kiln", x);
	else
		d = snprintf(buf, n, "/tmp/kiln-run-%u", uid);
	if (d < 0 || (size_t)d >= n)
		return -1;
	if ((size_t)snprintf(buf + d, n - d, "/userns") >= n - d)
		return -1;
	return d;
}

// not_kiln reports whether this process is kiln re-executed for another
// part than the command line: a container's init or exec helper, the
// toolbox's kiln in a container (run as a step's user), or a test
// binary. None of them is to join anything.
static int not_kiln(int argc, char **argv) {
	char exe[PATH_MAX];
	ssize_t n;
	if (argc > 0 && argv[0] != NULL && strncmp(argv[0], "kiln-container-", 15) == 0)
		return 1;
	n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n < 0)
		return 1;
	exe[n] = 0;
	if (strcmp(exe, "/.kiln/bin/kiln") == 0)
		return 1;
	return n >= 5 && strcmp(exe + n - 5, ".test") == 0;
}

static int join(void) {
	uid_t uid = getuid();
	char path[PATH_MAX], buf[64];
	struct stat st;
	unsigned long long ino;
	int pid, fd, d;
	uid_t owner;
	ssize_t n;

	d = holder_path(path, sizeof path, uid);
	if (d < 0)
		return 0;
	memcpy(kiln_nsjoin_file, path, sizeof path);
	path[d] = 0;
	// The directory: the user's, written by no one else.
	if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != uid || (st.st_mode & 022) != 0)
		return 0;
	path[d] = '/';
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != uid) {
		close(fd);
		return 0;
	}
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	if (sscanf(buf, "%d %llu", &pid, &ino) != 2 || pid <= 0)
		return 0;
	snprintf(path, sizeof path, "/proc/%d/ns/user", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0; // the holder is gone
	// A pid reused by another process has another namespace, or one
	// that is not the user's.
	if (fstat(fd, &st) != 0 || st.st_ino != ino || ioctl(fd, NS_GET_OWNER_UID, &owner) != 0 || owner != uid) {
		close(fd);
		return 0;
	}
	if (setns(fd, CLONE_NEWUSER) != 0) {
		close(fd);
		return fail("setns");
	}
	close(fd);
	// Mounts of this process's own, gone with it.
	if (unshare(CLONE_NEWNS) != 0)
		return fail("unshare");
	kiln_nsjoin_state = 1;
	return 0;
}

// glibc passes a constructor the program's arguments.
__attribute__((constructor)) static void kiln_nsjoin(int argc, char **argv, char **envp) {
	(void)envp;
	if (geteuid() == 0 || getenv("KILN_USERNS_NOJOIN") != NULL || not_kiln(argc, argv))
		return;
	join();
}
