/*
 * failfs: an LD_PRELOAD shim that makes a healthy disk fail on demand, for
 * native/tests/failstop.rs.
 *
 * Until the file named by $FAILFS_TRIGGER exists, fsync and fdatasync pass through and
 * each success records the file's length as of the call (by device and inode). Once it
 * exists, every fsync and fdatasync fails with EIO, and a regular file is first cut back
 * to its length at its last successful sync in this process: Linux drops the dirty pages
 * of a failed writeback, so what was written but never synced is gone from the disk
 * (PostgreSQL's fsync-gate). A file never synced in this process is left alone. The
 * failure is sticky, like a dead disk. Each cut is logged on stderr ("failfs: cut").
 *
 * ringkv syncs only through fsync and fdatasync (Rust's File::sync_all / sync_data, in
 * its own block store and in redb); it uses neither sync_file_range nor msync.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define FILES_MAX 4096

struct synced {
    dev_t dev;
    ino_t ino;
    off_t len;
};

static struct synced files[FILES_MAX];
static int files_len;
static pthread_mutex_t files_lock = PTHREAD_MUTEX_INITIALIZER;
static int tripped;

typedef int (*sync_fn)(int);

static int triggered(void) {
    if (__atomic_load_n(&tripped, __ATOMIC_ACQUIRE)) {
        return 1;
    }
    const char *trigger = getenv("FAILFS_TRIGGER");
    if (trigger != NULL && access(trigger, F_OK) == 0) {
        __atomic_store_n(&tripped, 1, __ATOMIC_RELEASE);
        return 1;
    }
    return 0;
}

/* The record of a file; NULL if none (and, with `add`, no room). Lock held. */
static struct synced *find(const struct stat *st, int add) {
    for (int i = 0; i < files_len; i++) {
        if (files[i].dev == st->st_dev && files[i].ino == st->st_ino) {
            return &files[i];
        }
    }
    if (!add || files_len == FILES_MAX) {
        return NULL;
    }
    files[files_len].dev = st->st_dev;
    files[files_len].ino = st->st_ino;
    return &files[files_len++];
}

/* Drops what was written after the last successful sync, then fails like the disk. */
static int fail(int fd) {
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        pthread_mutex_lock(&files_lock);
        struct synced *file = find(&st, 0);
        off_t len = file != NULL ? file->len : -1;
        pthread_mutex_unlock(&files_lock);
        if (len >= 0 && len < st.st_size && ftruncate(fd, len) == 0) {
            /* On stderr (the node's log), so a test can show the model was exercised. */
            char line[128];
            int n = snprintf(line, sizeof line, "failfs: cut inode %llu from %lld to %lld bytes\n",
                             (unsigned long long)st.st_ino, (long long)st.st_size, (long long)len);
            if (n > 0 && write(2, line, (size_t)n) < 0) {
                /* Nothing to do: the log is only informative. */
            }
        }
    }
    errno = EIO;
    return -1;
}

static int pass(const char *name, sync_fn *real, int fd) {
    sync_fn next = __atomic_load_n(real, __ATOMIC_ACQUIRE);
    if (next == NULL) {
        next = (sync_fn)dlsym(RTLD_NEXT, name);
        if (next == NULL) {
            errno = ENOSYS;
            return -1;
        }
        __atomic_store_n(real, next, __ATOMIC_RELEASE);
    }
    /* The length before the call: all of it is covered by a sync that succeeds
     * (appends racing the call may or may not be; counting them out is the safe side). */
    struct stat st;
    int regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    int result = next(fd);
    if (result == 0 && regular) {
        pthread_mutex_lock(&files_lock);
        struct synced *file = find(&st, 1);
        if (file != NULL) {
            file->len = st.st_size;
        }
        pthread_mutex_unlock(&files_lock);
    }
    return result;
}

int fsync(int fd) {
    static sync_fn real;
    if (triggered()) {
        return fail(fd);
    }
    return pass("fsync", &real, fd);
}

int fdatasync(int fd) {
    static sync_fn real;
    if (triggered()) {
        return fail(fd);
    }
    return pass("fdatasync", &real, fd);
}
