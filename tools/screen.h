/* Full-screen terminal output without curses, for ringq top: the terminal's
 * modes (alternate screen, hidden cursor, keys read one at a time) and
 * frames drawn into memory with every line cut to the width, then written
 * at once. Plain ANSI/VT100 sequences only.
 *
 * A frame on a term without a screen is plain text: no escapes and no
 * empty lines, so a blank line can separate frames.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <termios.h>

#define SGR_RESET "\033[m"
#define SGR_BOLD "\033[1m"

struct term {
        bool screen;  /* full-screen mode: stdout is a terminal */
        bool entered; /* alternate screen on, cursor hidden */
        int key_fd;   /* a terminal to read keys from, else -1 */
        bool raw;     /* key_fd is in non-canonical mode */
        struct termios saved; /* key_fd's modes before; set with key_fd */
        unsigned cols, rows;  /* rows 0: no limit (plain frames) */
        bool utf8;            /* the locale's charset is UTF-8 */
};

/* Take the size of the terminal on stdout (80x24 if it tells none). */
void term_size(struct term *t);
/* Switch to the alternate screen, hide the cursor, and make key_fd give
 * keys unechoed as they are typed; does what is not done yet. */
int term_enter(struct term *t);
/* Undo term_enter(); safe in any state, ignores errors (the terminal may
 * be gone, and there is nothing better to do then). */
void term_leave(struct term *t);

struct frame {
        FILE *f;           /* open_memstream, owned from fr_begin to fr_end */
        const struct term *term;
        unsigned row, col; /* where the next character goes */
        unsigned pad;      /* spaces owed before the next text, so lines
                              never end in padding */
        bool started;      /* something was put on this row */
};

/* Start a frame for term into *buf (the caller frees it, also on error). */
int fr_begin(struct frame *fr, const struct term *term, char **buf, size_t *len);
/* Finish it: on a screen, clear what an earlier, longer frame left below.
 * 0 or -ENOMEM; *buf and *len are set either way. */
int fr_end(struct frame *fr);

/* Whether the current row is still on the screen. */
bool fr_visible(const struct frame *fr);
/* Columns left on the current row. */
unsigned fr_room(const struct frame *fr);
/* An SGR sequence; nothing in plain frames. */
void fr_attr(struct frame *fr, const char *sgr);
/* Continue the row at column col (if it is not past it already). */
void fr_pad_to(struct frame *fr, unsigned col);
/* Text, cut at the row's end; what cannot be shown becomes '?'. */
void fr_text(struct frame *fr, const char *s);
/* fr_text() of a short formatted piece (at most FR_PIECE_MAX bytes). */
#define FR_PIECE_MAX 256
__attribute__((format(printf, 2, 3)))
void fr_printf(struct frame *fr, const char *fmt, ...);
/* End the row (rows past the screen's end are dropped). */
void fr_newline(struct frame *fr);
