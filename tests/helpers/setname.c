/* setname NAME_HEX: set this process's name (the comm shown in
 * /proc/PID/status and by ps) to arbitrary bytes with prctl(PR_SET_NAME),
 * then wait.  NAME_HEX is the name hex-encoded ("" for an empty name), so
 * a test can pass ESC, BEL, newline or bytes that are not UTF-8.  The
 * kernel keeps the first 15 bytes, and stops at a NUL.
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

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: setname NAME_HEX\n");
        return 2;
    }
    const char *hex = argv[1];
    size_t length = strlen(hex);
    char name[64] = {0};
    if (length % 2 || length / 2 >= sizeof name) {
        fprintf(stderr, "bad NAME_HEX: %s\n", hex);
        return 2;
    }
    for (size_t i = 0; i < length / 2; i++) {
        int high = hex_digit(hex[2 * i]), low = hex_digit(hex[2 * i + 1]);
        if (high < 0 || low < 0) {
            fprintf(stderr, "bad NAME_HEX: %s\n", hex);
            return 2;
        }
        name[i] = (char)(high << 4 | low);
    }
    helper_start();
    if (prctl(PR_SET_NAME, name) != 0)
        die("prctl(PR_SET_NAME)");
    report_ready();
    return wait_for_stop_and_exit();
}
