/* Terminal modes and frames for ringq top (see screen.h).
 *
 * On a screen every row is placed with a cursor move and never followed by
 * a newline, so nothing scrolls even when a row fills the last column.
 */
#include "screen.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <wchar.h>

#include "cli.h"
#include "fmt.h"

#define SCREEN_ON "\033[?1049h\033[?25l" /* alternate screen, hide cursor */
/* And back. The alternate screen is cleared first: after a resize, tmux
 * (3.3) otherwise carries lines of it over to the normal screen. */
#define SCREEN_OFF "\033[m\033[H\033[2J\033[?25h\033[?1049l"

/* ---- terminal ---- */

void term_size(struct term *t)
{
        struct winsize ws;

        if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
                t->cols = ws.ws_col;
                t->rows = ws.ws_row;
        } else {
                t->cols = 80;
                t->rows = 24;
        }
}

int term_enter(struct term *t)
{
        int r;

        if (t->key_fd >= 0 && !t->raw) {
                struct termios raw = t->saved;

                /* Keys one at a time and unechoed; ISIG stays, so Ctrl-C
                 * and Ctrl-Z arrive as signals. */
                raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
                raw.c_cc[VMIN] = 1;
                raw.c_cc[VTIME] = 0;
                if (tcsetattr(t->key_fd, TCSANOW, &raw) < 0)
                        return -errno;
                t->raw = true;
        }
        if (!t->entered) {
                r = write_all(STDOUT_FILENO, SCREEN_ON, sizeof(SCREEN_ON) - 1);
                if (r < 0)
                        return r;
                t->entered = true;
        }
        return 0;
}

void term_leave(struct term *t)
{
        if (t->entered)
                (void)write_all(STDOUT_FILENO, SCREEN_OFF, sizeof(SCREEN_OFF) - 1);
        t->entered = false;
        if (t->raw)
                (void)tcsetattr(t->key_fd, TCSANOW, &t->saved);
        t->raw = false;
}

/* ---- frames ---- */

bool fr_visible(const struct frame *fr)
{
        return fr->term->rows == 0 || fr->row < fr->term->rows;
}

static void fr_start(struct frame *fr)
{
        if (!fr->started && fr->term->screen)
                fprintf(fr->f, "\033[%u;1H", fr->row + 1);
        fr->started = true;
}

unsigned fr_room(const struct frame *fr)
{
        unsigned used = fr->col + fr->pad;

        return used < fr->term->cols ? fr->term->cols - used : 0;
}

void fr_attr(struct frame *fr, const char *sgr)
{
        if (!fr->term->screen || !fr_visible(fr))
                return;
        fr_start(fr);
        fputs(sgr, fr->f);
}

void fr_pad_to(struct frame *fr, unsigned col)
{
        if (col > fr->col + fr->pad)
                fr->pad = col - fr->col;
}

/* Columns a code point takes, or -1 if it must not reach the terminal:
 * controls (C1 ones too, which a UTF-8 terminal obeys), invalid bytes,
 * and any non-ASCII when the terminal's charset is not UTF-8. */
static int cp_width(int32_t cp, bool utf8)
{
        if (fmt_cp_unsafe(cp))
                return -1;
        if (cp < 0x80)
                return 1;
        return utf8 ? wcwidth((wchar_t)cp) : -1;
}

void fr_text(struct frame *fr, const char *s)
{
        unsigned cols = fr->term->cols;

        if (!fr_visible(fr) || !*s)
                return;
        fr_start(fr);
        for (; fr->pad > 0 && fr->col < cols; fr->pad--, fr->col++)
                fputc(' ', fr->f);
        fr->pad = 0;
        while (*s) {
                int32_t cp;
                size_t n = fmt_utf8_next(s, &cp);
                int w = cp < 0 ? -1 : cp_width(cp, fr->term->utf8);

                if (fr->col + (unsigned)(w < 0 ? 1 : w) > cols)
                        break;
                if (w < 0) {
                        fputc('?', fr->f);
                        fr->col++;
                } else {
                        fwrite(s, 1, n, fr->f);
                        fr->col += (unsigned)w;
                }
                s += n;
        }
}

void fr_printf(struct frame *fr, const char *fmt, ...)
{
        char buf[FR_PIECE_MAX];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        fr_text(fr, buf);
}

void fr_newline(struct frame *fr)
{
        if (fr_visible(fr)) {
                if (fr->term->screen) {
                        fr_start(fr);
                        /* Erase the rest of the old line; not at the last
                         * column, where the erase would take that cell. */
                        fputs(fr->col < fr->term->cols ? SGR_RESET "\033[K" : SGR_RESET, fr->f);
                } else if (fr->started) {
                        /* Plain frames have no empty lines: a blank line
                         * is where one frame ends. */
                        fputc('\n', fr->f);
                }
        }
        fr->row++;
        fr->col = fr->pad = 0;
        fr->started = false;
}

int fr_begin(struct frame *fr, const struct term *term, char **buf, size_t *len)
{
        *fr = (struct frame){ .term = term };
        fr->f = open_memstream(buf, len);
        return fr->f ? 0 : -ENOMEM;
}

int fr_end(struct frame *fr)
{
        if (fr->term->screen && fr_visible(fr))
                fprintf(fr->f, "\033[%u;1H\033[J", fr->row + 1);
        return fclose(fr->f) == 0 ? 0 : -ENOMEM;
}
