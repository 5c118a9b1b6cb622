/*
 * A diagnostic LD_PRELOAD shim for bench/mta.py (not for production):
 * it makes some of a server's syncs return at once, so that a benchmark
 * can measure what the others cost without changing the server.
 *
 * - fsync() of a directory returns at once; with SYNCSHIM_DIRS set to a
 *   colon-separated list of directory names (e.g. "active"), only of
 *   directories with one of those names.
 * - fsync() and fdatasync() of anything else (the files) reach the disk.
 *
 * Unset SYNCSHIM_DIRS leaves Postern with the syncs Postfix makes per
 * message, one of each file (the queue file, the delivered file), and
 * none of the directory fsyncs it adds for the files' names.
 *
 * With SYNCSHIM_PATHS set instead (a colon-separated list of absolute
 * directory paths, e.g. the queue directory), every sync of a file or
 * directory under one of them returns at once, and every other sync
 * reaches the disk: what one stage's syncs (the queue's, the mailbox's)
 * cost, the other's kept.
 *
 *     cc -shared -fPIC -O2 -o syncshim.so bench/syncshim.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int (*real_fsync)(int);
static int (*real_fdatasync)(int);

/* Whether `fd`'s path is in the colon-separated `list`: with `base`, its
 * last component equals an item; without, the path is an item or lies
 * under one (an item is a directory's absolute path). */
static int listed(int fd, const char *list, int base)
{
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0)
        return 0;
    path[n] = '\0';
    const char *name = path;
    if (base) {
        const char *slash = strrchr(path, '/');
        name = slash ? slash + 1 : path;
    }
    size_t len = strlen(name);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ':');
        size_t l = end ? (size_t)(end - p) : strlen(p);
        int same = l <= len && strncmp(p, name, l) == 0;
        if (same && (base ? l == len : name[l] == '\0' || name[l] == '/'))
            return 1;
        if (!end)
            break;
        p = end + 1;
    }
    return 0;
}

/* Whether directory `fd` is one whose fsync is skipped. */
static int skipped_dir(int fd)
{
    const char *names = getenv("SYNCSHIM_DIRS");
    return !names || !*names || listed(fd, names, 1);
}

/* `real` of `fd` (looked up by `name` the first time), unless `fd` is a
 * directory whose sync is skipped. */
static int sync_unless_skipped(int fd, int (**real)(int), const char *name)
{
    const char *paths = getenv("SYNCSHIM_PATHS");
    struct stat st;
    if (paths && *paths) {
        if (listed(fd, paths, 0))
            return 0;
    } else if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) && skipped_dir(fd)) {
        return 0;
    }
    if (!*real)
        *real = (int (*)(int))dlsym(RTLD_NEXT, name);
    return (*real)(fd);
}

int fsync(int fd)
{
    return sync_unless_skipped(fd, &real_fsync, "fsync");
}

int fdatasync(int fd)
{
    return sync_unless_skipped(fd, &real_fdatasync, "fdatasync");
}
