/*
 * Spare queue files against new ones, measured outside the server
 * (issue 8, bench/README.md "Spare queue files"): THREADS writers each put
 * MESSAGES messages of 4,500 bytes through a queue file and a Maildir file
 * the way Postern does, with the directory fsyncs shared by a leader among
 * concurrent writers (host/queue/src/commit.rs), and print messages per
 * second and the process's CPU per message. Run it on the file system to
 * judge (a fresh ext4 with a journal on a loop device, as bench/mta.py
 * --fs journaled makes), a fresh DIR each time.
 *
 *     cc -O2 -pthread -o spare-files bench/spare-files.c
 *     ./spare-files DIR VARIANT THREADS MESSAGES
 *
 * VARIANT: 0 a new queue file each time (create in incoming/, write, start
 * its writeback, rename into active/, shared fsync of active/, fdatasync;
 * after the delivery, unlink: host/queue/src/spool.rs before spares);
 * 1 a spare written over (write at 0, fdatasync, rename into active/,
 * shared fsync; after the delivery, renamed back: spare.rs); 2 as 1 with
 * sizes of 4,500 and 4,400 bytes in turn, so that every message changes
 * the spare's length; 3 the Maildir file alone (no queue file: what
 * immediate_local_delivery writes). Every variant delivers each message
 * into DIR/md/new/ as host/deliver does (create in tmp/, write,
 * fdatasync, rename into new/, shared fsync of new/).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *dir;
static int variant, threads, per;
static char buf[4500];

/* One directory's shared fsync: a caller runs it for every caller that
 * joined before it began, the others wait for it. */
struct group { pthread_mutex_t mu; pthread_cond_t cv; unsigned long gathering, running, done; int fd; };
static struct group active = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, (unsigned long)-1, -1};
static struct group maildir_new = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, (unsigned long)-1, -1};

static void shared_fsync(struct group *g) {
    pthread_mutex_lock(&g->mu);
    unsigned long batch = g->gathering;
    for (;;) {
        if (g->done != (unsigned long)-1 && g->done >= batch) break;
        if (!g->running) {
            g->running = 1; g->gathering++;
            pthread_mutex_unlock(&g->mu);
            if (fsync(g->fd) != 0) { perror("fsync"); exit(1); }
            pthread_mutex_lock(&g->mu);
            g->running = 0; g->done = batch;
            pthread_cond_broadcast(&g->cv);
            break;
        }
        pthread_cond_wait(&g->cv, &g->mu);
    }
    pthread_mutex_unlock(&g->mu);
}

static void check(int ok, const char *what) { if (!ok) { perror(what); exit(1); } }

static void deliver(int t, int i) {
    char tmp[512], new_[512];
    snprintf(tmp, sizeof tmp, "%s/md/tmp/%d.%d", dir, t, i);
    snprintf(new_, sizeof new_, "%s/md/new/%d.%d", dir, t, i);
    int fd = open(tmp, O_CREAT | O_WRONLY | O_EXCL, 0600);
    check(fd >= 0, "open tmp");
    check(write(fd, buf, sizeof buf) == sizeof buf, "write");
    check(fdatasync(fd) == 0, "fdatasync");
    close(fd);
    check(rename(tmp, new_) == 0, "rename new");
    shared_fsync(&maildir_new);
}

static void *writer(void *arg) {
    int t = (int)(long)arg;
    char spare[512], queued[512], incoming[512];
    snprintf(spare, sizeof spare, "%s/spare/%d", dir, t);
    for (int i = 0; i < per; i++) {
        snprintf(queued, sizeof queued, "%s/active/%d.%d", dir, t, i);
        if (variant == 0) {
            snprintf(incoming, sizeof incoming, "%s/incoming/%d.%d", dir, t, i);
            int fd = open(incoming, O_CREAT | O_WRONLY | O_EXCL, 0600);
            check(fd >= 0, "open incoming");
            check(write(fd, buf, sizeof buf) == sizeof buf, "write");
            posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
            check(rename(incoming, queued) == 0, "rename active");
            shared_fsync(&active);
            check(fdatasync(fd) == 0, "fdatasync");
            close(fd);
            deliver(t, i);
            check(unlink(queued) == 0, "unlink");
        } else if (variant == 1 || variant == 2) {
            size_t n = (variant == 2 && (i & 1)) ? 4400 : sizeof buf;
            int fd = open(spare, O_WRONLY);
            check(fd >= 0, "open spare");
            check(pwrite(fd, buf, n, 0) == (ssize_t)n, "pwrite");
            struct stat st;
            check(fstat(fd, &st) == 0, "fstat");
            if ((size_t)st.st_size != n) check(ftruncate(fd, n) == 0, "ftruncate");
            check(fdatasync(fd) == 0, "fdatasync");
            close(fd);
            check(rename(spare, queued) == 0, "rename active");
            shared_fsync(&active);
            deliver(t, i);
            check(rename(queued, spare) == 0, "rename spare");
        } else {
            deliver(t, i);
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: %s DIR VARIANT THREADS MESSAGES\n", argv[0]); return 2; }
    dir = argv[1]; variant = atoi(argv[2]); threads = atoi(argv[3]); per = atoi(argv[4]);
    if (threads < 1 || threads > 256 || per < 1) { fprintf(stderr, "THREADS 1-256, MESSAGES >= 1\n"); return 2; }
    memset(buf, 'x', sizeof buf);
    char path[512];
    const char *subdirs[] = {"incoming", "active", "spare", "md", "md/tmp", "md/new"};
    for (int i = 0; i < 6; i++) { snprintf(path, sizeof path, "%s/%s", dir, subdirs[i]); mkdir(path, 0700); }
    for (int t = 0; t < threads; t++) {
        /* Each writer's spare, as a finished message would have left it. */
        snprintf(path, sizeof path, "%s/spare/%d", dir, t);
        int fd = open(path, O_CREAT | O_WRONLY, 0600);
        check(fd >= 0 && write(fd, buf, sizeof buf) == sizeof buf && fsync(fd) == 0, "spare");
        close(fd);
    }
    snprintf(path, sizeof path, "%s/active", dir); active.fd = open(path, O_RDONLY | O_DIRECTORY);
    snprintf(path, sizeof path, "%s/md/new", dir); maildir_new.fd = open(path, O_RDONLY | O_DIRECTORY);
    check(active.fd >= 0 && maildir_new.fd >= 0, "open dirs");
    sync();
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    pthread_t th[256];
    for (int t = 0; t < threads; t++) pthread_create(&th[t], 0, writer, (void *)(long)t);
    for (int t = 0; t < threads; t++) pthread_join(th[t], 0);
    clock_gettime(CLOCK_MONOTONIC, &end);
    getrusage(RUSAGE_SELF, &after);
    double secs = (end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9;
#define CPU(r) ((r).ru_utime.tv_sec + (r).ru_utime.tv_usec / 1e6 + (r).ru_stime.tv_sec + (r).ru_stime.tv_usec / 1e6)
    double cpu = CPU(after) - CPU(before);
    long n = (long)threads * per;
    printf("variant %d: %.0f msg/s, CPU %.1f us/msg\n", variant, n / secs, cpu * 1e6 / n);
    return 0;
}
