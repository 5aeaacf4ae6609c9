/* setname NAME_HEX [NAME2_HEX]: set this process's name (the comm shown in
 * /proc/PID/status and by ps) to arbitrary bytes with prctl(PR_SET_NAME),
 * then wait.  NAME_HEX is the name hex-encoded ("" for an empty name), so
 * a test can pass ESC, BEL, newline or bytes that are not UTF-8.  The
 * kernel keeps the first 15 bytes, and stops at a NUL.  With NAME2_HEX,
 * each SIGUSR1 switches to the other name and prints "renamed".
 *
 * Prints "ready PID" and waits; see common.h.
 */
#include "common.h"

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void decode_name(const char *hex, char name[64])
{
    size_t length = strlen(hex);
    memset(name, 0, 64);
    if (length % 2 || length / 2 >= 64) {
        fprintf(stderr, "bad NAME_HEX: %s\n", hex);
        exit(2);
    }
    for (size_t i = 0; i < length / 2; i++) {
        int high = hex_digit(hex[2 * i]), low = hex_digit(hex[2 * i + 1]);
        if (high < 0 || low < 0) {
            fprintf(stderr, "bad NAME_HEX: %s\n", hex);
            exit(2);
        }
        name[i] = (char)(high << 4 | low);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: setname NAME_HEX [NAME2_HEX]\n");
        return 2;
    }
    char names[2][64];
    decode_name(argv[1], names[0]);
    decode_name(argv[argc - 1], names[1]);
    helper_start();
    int current = 0;
    if (prctl(PR_SET_NAME, names[current]) != 0)
        die("prctl(PR_SET_NAME)");
    report_ready();
    while (wait_signal() == SIGUSR1) {
        current = !current;
        if (prctl(PR_SET_NAME, names[current]) != 0)
            die("prctl(PR_SET_NAME)");
        printf("renamed\n");
        if (fflush(stdout) != 0)
            die("fflush");
    }
    return stop_children();
}
