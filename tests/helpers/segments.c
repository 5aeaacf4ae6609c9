/* segments K [FILE...]: hold one of each kind of mapping that
 * `--group-by mapping` names, then fork K children that keep them all, so
 * that the shared ones are shared by K+1 processes:
 *
 *   /dev/shm/ps_mem-segments-PID   1 MiB, MAP_SHARED (shm_open)
 *   memfd "ps_mem-memfd"           2 MiB, MAP_SHARED
 *   SysV key 0x5053PPPP            3 MiB, attached (PPPP: the pid's low 16 bits)
 *   anonymous, private             4 MiB, named "ps_mem-anon" where the kernel
 *                                  has CONFIG_ANON_VMA_NAME
 *   anonymous, shared              5 MiB, named "ps_mem-shmem" likewise
 *   each FILE                      its first page, MAP_SHARED, read
 *
 * Every page is written (each FILE's is read), so all of it is resident,
 * and each child reads every page of the shared ones, which fork() does
 * not map in the child until it touches them.
 * The /dev/shm file and the SysV segment are removed on SIGTERM, SIGINT or
 * SIGHUP; a SIGKILL leaves them behind.
 *
 * Prints "ready PARENT CHILD..." and waits; see common.h.  Prints first, on
 * stderr, "named" or "unnamed": whether PR_SET_VMA_ANON_NAME worked.
 */
#include "common.h"  /* first: it defines _GNU_SOURCE, for memfd_create() */

#include <fcntl.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/stat.h>

#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif

#define MAX_SHARED 64
static volatile char *shared_at[MAX_SHARED];
static size_t shared_size[MAX_SHARED];
static int nshared;

static void keep_shared(volatile char *memory, size_t size)
{
    if (nshared >= MAX_SHARED) {
        fprintf(stderr, "too many shared mappings\n");
        exit(2);
    }
    shared_at[nshared] = memory;
    shared_size[nshared++] = size;
}

static void read_shared(void)
{
    long page = sysconf(_SC_PAGESIZE);
    for (int i = 0; i < nshared; i++)
        for (size_t at = 0; at < shared_size[i]; at += page)
            (void)shared_at[i][at];
}

static void *shared_file(int fd, long mib)
{
    size_t size = (size_t)mib << 20;
    if (ftruncate(fd, size) != 0)
        die("ftruncate");
    char *memory = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (memory == MAP_FAILED)
        die("mmap shared");
    memset(memory, 0x5a, size);
    keep_shared(memory, size);
    return memory;
}

static void *anonymous(long mib, int flags, const char *name, int *named)
{
    size_t size = (size_t)mib << 20;
    char *memory = mmap(NULL, size, PROT_READ | PROT_WRITE, flags | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED)
        die("mmap anonymous");
    memset(memory, 0x5a, size);
    if (prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)memory, size,
              (unsigned long)name) == 0)
        *named = 1;
    if (flags & MAP_SHARED)
        keep_shared(memory, size);
    return memory;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: segments K [FILE...]\n");
        return 2;
    }
    long children = parse_count(argv[1], "K", MAX_CHILDREN);
    helper_start();
    pid_t helper = getpid();

    char shm_name[64];
    snprintf(shm_name, sizeof shm_name, "/ps_mem-segments-%d", (int)helper);
    int fd = shm_open(shm_name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        die("shm_open");
    shared_file(fd, 1);
    close(fd);

    fd = memfd_create("ps_mem-memfd", 0);
    if (fd < 0)
        die("memfd_create");
    shared_file(fd, 2);
    close(fd);

    key_t key = (key_t)(0x50530000 | (helper & 0xffff));
    int shmid = shmget(key, 3 << 20, IPC_CREAT | IPC_EXCL | 0600);
    if (shmid < 0)
        die("shmget");
    char *segment = shmat(shmid, NULL, 0);
    if (segment == (void *)-1)
        die("shmat");
    memset(segment, 0x5a, 3 << 20);
    keep_shared(segment, 3 << 20);

    int named = 0;
    anonymous(4, MAP_PRIVATE, "ps_mem-anon", &named);
    anonymous(5, MAP_SHARED, "ps_mem-shmem", &named);

    for (int i = 2; i < argc; i++) {
        fd = open(argv[i], O_RDONLY);
        if (fd < 0)
            die(argv[i]);
        volatile char *page = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
        if (page == MAP_FAILED)
            die("mmap file");
        (void)page[0];
        keep_shared(page, 4096);
        close(fd);
    }

    fprintf(stderr, "%s\n", named ? "named" : "unnamed");
    fflush(stdout);
    for (long i = 0; i < children; i++) {
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0) {
            child_start(helper);
            read_shared();
            child_pause_forever();
        }
        add_child(pid);
    }
    report_ready();
    int status = wait_for_stop_and_exit();
    shm_unlink(shm_name);
    shmdt(segment);
    shmctl(shmid, IPC_RMID, NULL);
    return status;
}
