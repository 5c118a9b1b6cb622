/*
 * Flush strategies for the queue's 250 path, measured outside the server
 * (issue 8, bench/README.md "One flush per batch"): THREADS writers each
 * create a 4,500-byte file in DIR/incoming/, move it into DIR/active/ and
 * make it durable in one of several ways, with the directory fsync shared
 * by a leader among concurrent writers as host/queue/src/commit.rs does.
 * Prints messages per second and flushes (batches); read the journal
 * commits from /proc/fs/jbd2/DEV-8/info before and after.
 *
 *     cc -O2 -pthread -o commit-strategies bench/commit-strategies.c
 *     ./commit-strategies DIR VARIANT THREADS SECONDS
 *
 * VARIANT: 0 fsync file, link, shared fsync of active/ (before issue 8's
 * change); 1 link, sync_file_range(wait), shared fsync, fdatasync; 2 link,
 * shared syncfs; 3 O_DIRECT write of the padded file, ftruncate, link,
 * shared fsync, fdatasync; 4 link, fdatasync, shared fsync; 5 link,
 * fdatasync only (not enough: no directory sync; a lower bound);
 * 6 link, posix_fadvise(DONTNEED), shared fsync, fdatasync (commit.rs
 * now); 7 as 3 without the ftruncate (not a valid file: its cost only);
 * 8 link, sync_file_range(wait), shared fsync (not enough either);
 * 9 no sync at all.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>

static const char *dir; static int variant; static int threads; static double seconds;
static volatile int stop;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static unsigned long gathering, joined, running, done_batch = (unsigned long)-1;
static long steps, members_total;
static char active[4096];

static void step(void) {
    if (variant == 2) { int fd = open(active, O_RDONLY|O_DIRECTORY); syncfs(fd); close(fd); }
    else { int fd = open(active, O_RDONLY|O_DIRECTORY); fsync(fd); close(fd); }
}
static void group(void) {
    pthread_mutex_lock(&mu);
    unsigned long batch = gathering; joined++;
    for (;;) {
        if (done_batch != (unsigned long)-1 && done_batch >= batch) break;
        if (!running) {
            running = 1; unsigned long m = joined; joined = 0; gathering++;
            pthread_mutex_unlock(&mu);
            step();
            pthread_mutex_lock(&mu);
            running = 0; done_batch = batch; steps++; members_total += m;
            pthread_cond_broadcast(&cv);
            break;
        }
        pthread_cond_wait(&cv, &mu);
    }
    pthread_mutex_unlock(&mu);
}
#define SIZE 4500
static long counts[64];
static void *worker(void *arg) {
    long t = (long)arg; char inc[4096], act[4096], old[4096];
    char *buf = NULL;
    if (posix_memalign((void**)&buf, 4096, 8192) != 0) { perror("posix_memalign"); exit(1); }
    memset(buf, 'x', 8192);
    for (long n = 0; !stop; n++) {
        snprintf(inc, sizeof inc, "%s/incoming/%ld_%ld", dir, t, n);
        snprintf(act, sizeof act, "%s/active/%ld_%ld", dir, t, n);
        int flags = O_CREAT|O_EXCL|O_WRONLY; if (variant == 3 || variant == 7) flags |= O_DIRECT;
        int fd = open(inc, flags, 0600); if (fd < 0) { perror("open"); exit(1); }
        if (variant == 3 || variant == 7) { if (write(fd, buf, 8192) != 8192) { perror("dio write"); exit(1);} if (variant == 3) ftruncate(fd, SIZE); }
        else if (write(fd, buf, SIZE) != SIZE) { perror("write"); exit(1); }
        switch (variant) {
        case 0: fsync(fd); link(inc, act); unlink(inc); group(); break;
        case 1: link(inc, act); unlink(inc); sync_file_range(fd, 0, 0, 7); group(); fdatasync(fd); break;
        case 2: link(inc, act); unlink(inc); group(); break;
        case 3: case 7: link(inc, act); unlink(inc); group(); fdatasync(fd); break;
        case 4: link(inc, act); unlink(inc); fdatasync(fd); group(); break;
        case 5: link(inc, act); unlink(inc); fdatasync(fd); break;
        case 6: link(inc, act); unlink(inc); posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED); group(); fdatasync(fd); break;
        case 8: link(inc, act); unlink(inc); sync_file_range(fd, 0, 0, 7); group(); break;
        default: link(inc, act); unlink(inc); break;
        }
        close(fd);
        if (n >= 40) { snprintf(old, sizeof old, "%s/active/%ld_%ld", dir, t, n - 40); unlink(old); }
        counts[t]++;
    }
    return 0;
}
int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: %s DIR VARIANT THREADS SECONDS\n", argv[0]); return 2; }
    dir = argv[1]; variant = atoi(argv[2]); threads = atoi(argv[3]); seconds = atof(argv[4]);
    snprintf(active, sizeof active, "%s/active", dir);
    if (threads < 1 || threads > 64) { fprintf(stderr, "THREADS: 1 to 64\n"); return 2; }
    pthread_t th[64];
    for (long i = 0; i < threads; i++) pthread_create(&th[i], 0, worker, (void*)i);
    usleep((useconds_t)(seconds * 1e6)); stop = 1;
    for (int i = 0; i < threads; i++) pthread_join(th[i], 0);
    long total = 0; for (int i = 0; i < threads; i++) total += counts[i];
    printf("variant %d: %.0f msg/s, %ld steps, %.1f per step\n", variant, total / seconds, steps, steps ? (double)members_total / steps : 0);
    return 0;
}
