/* Device side of the tinySNN board protocol. The normative description is docs/protocol.md. */
#include "protocol.h"

#include "crc32.h"
#include "engine.h"
#include "port.h"

#define LINE_MAX 320u

typedef struct {
    /* command assembly */
    char cmd[TSNN_CMD_MAX];
    uint32_t cmd_len;
    int overflow;
    /* data buffer */
    uint8_t db[TSNN_DB_MAX];
    uint32_t db_expect; /* 0: no load in progress */
    uint32_t db_len;
    uint32_t db_crc;
    int db_sequenced; /* the load was started by a sequenced frame: data must be sequenced too */
    /* Random-access loading (db put / db map): which bytes have arrived, and how many. Appends
     * (db HEX) mark their bytes too, so "complete" means the same for both ways of loading. */
    uint8_t db_filled[TSNN_DB_MAX / 8u];
    uint32_t db_fill;
    int db_put_used; /* a put arrived since db load: appends are refused (they need a cursor) */
    /* retransmission memory */
    int have_seq;
    uint32_t last_seq;
    /* last inference */
    int infer_status; /* 0 none, 1 ok, 2 engine error */
    int engine_error;
    uint32_t r_sid, r_seed, r_n, r_w;
    uint32_t r_cycles, r_min, r_max, r_total;
    uint32_t r_lap_start, r_lap_end; /* the window's two timestamps (microseconds) */
    uint8_t r_pred;
    uint16_t r_counts[TSNN_N_NEURONS];
    /* reply accounting for sequenced commands */
    int seq_mode;
    uint32_t reply_crc;
    uint32_t reply_lines;
    /* line being built */
    char line[LINE_MAX];
    uint32_t line_len;
} proto_state;

static proto_state S;

static const char HEX[] = "0123456789abcdef";

/* ---- output ------------------------------------------------------------------------------ */

static void line_start(void) { S.line_len = 0; }

static void put_str(const char *s)
{
    while (*s && S.line_len < LINE_MAX)
        S.line[S.line_len++] = *s++;
}

static void put_char(char c)
{
    if (S.line_len < LINE_MAX)
        S.line[S.line_len++] = c;
}

static void put_dec(uint32_t v)
{
    char tmp[10];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v && n < 10);
    while (n > 0)
        put_char(tmp[--n]);
}

static void put_hex(uint32_t v, int digits)
{
    int i;
    for (i = digits - 1; i >= 0; i--)
        put_char(HEX[(v >> (4 * i)) & 0xFu]);
}

/* Append ",crc=XXXXXXXX": CRC-32 of the line so far. */
static void put_line_crc(void)
{
    uint32_t c = tsnn_crc32_update(0, (const uint8_t *)S.line, S.line_len);
    put_str(",crc=");
    put_hex(c, 8);
}

static void raw_write(const char *p, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; i++)
        port_uart_putc((uint8_t)p[i]);
}

static void line_end(void)
{
    static const char crlf[2] = {'\r', '\n'};
    raw_write(S.line, S.line_len);
    raw_write(crlf, 2);
    if (S.seq_mode) {
        S.reply_crc = tsnn_crc32_update(S.reply_crc, (const uint8_t *)S.line, S.line_len);
        S.reply_crc = tsnn_crc32_update(S.reply_crc, (const uint8_t *)crlf, 2);
        S.reply_lines++;
    }
}

static void emit(const char *s)
{
    line_start();
    put_str(s);
    line_end();
}

static void emit_ready(void)
{
    emit("m-ready");
    port_uart_flush();
}

/* ---- parsing helpers ------------------------------------------------------------------- */

static int hex_val(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Parse exactly n hex digits; returns 0 on success. */
static int parse_hex_fixed(const char *p, uint32_t n, uint32_t *out)
{
    uint32_t v = 0, i;
    for (i = 0; i < n; i++) {
        int d = hex_val(p[i]);
        if (d < 0) return -1;
        v = (v << 4) | (uint32_t)d;
    }
    *out = v;
    return 0;
}

/* Parse a decimal token (1..10 digits) no larger than max. */
static int parse_dec(const char *p, uint32_t n, uint32_t max, uint32_t *out)
{
    uint32_t v = 0, i;
    if (n == 0 || n > 10) return -1;
    for (i = 0; i < n; i++) {
        uint32_t d;
        if (p[i] < '0' || p[i] > '9') return -1;
        d = (uint32_t)(p[i] - '0');
        if (v > (max - d) / 10u) return -1; /* v*10 + d > max */
        v = v * 10u + d;
    }
    *out = v;
    return 0;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

#define MAX_TOK 5
typedef struct {
    const char *p[MAX_TOK];
    uint32_t n[MAX_TOK];
    int count; /* number of tokens; MAX_TOK + 1 means "too many" */
} tokens;

static void tokenize(const char *s, uint32_t len, tokens *t)
{
    uint32_t i = 0;
    t->count = 0;
    while (i < len) {
        uint32_t start;
        while (i < len && is_space(s[i])) i++;
        if (i >= len) break;
        start = i;
        while (i < len && !is_space(s[i])) i++;
        if (t->count >= MAX_TOK) {
            t->count = MAX_TOK + 1;
            return;
        }
        t->p[t->count] = s + start;
        t->n[t->count] = i - start;
        t->count++;
    }
}

static int tok_is(const tokens *t, int i, const char *word)
{
    uint32_t k = 0;
    if (i >= t->count) return 0;
    while (word[k] && k < t->n[i]) {
        if (t->p[i][k] != word[k]) return 0;
        k++;
    }
    return word[k] == '\0' && k == t->n[i];
}

static uint32_t rd_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* ---- commands ----------------------------------------------------------------------------- */

static void db_mark(uint32_t off, uint32_t n)
{
    uint32_t i;
    for (i = off; i < off + n; i++) {
        uint8_t bit = (uint8_t)(1u << (i & 7u));
        if (!(S.db_filled[i >> 3] & bit)) {
            S.db_filled[i >> 3] |= bit;
            S.db_fill++;
        }
    }
}

static int db_complete(void) { return S.db_expect != 0 && S.db_fill == S.db_expect; }

/* 1 when every byte of [off, off + n) has arrived. */
static int db_range_filled(uint32_t off, uint32_t n)
{
    uint32_t i;
    for (i = off; i < off + n; i++)
        if (!(S.db_filled[i >> 3] & (1u << (i & 7u))))
            return 0;
    return 1;
}

static void reply_db_state(void)
{
    line_start();
    put_str("m-db-len-");
    put_dec(S.db_len);
    put_str("-of-");
    put_dec(S.db_expect);
    line_end();
    line_start();
    put_str("m-db-crc-");
    put_hex(S.db_crc, 8);
    line_end();
    if (S.db_expect && S.db_len == S.db_expect)
        emit("m-load-done");
}

static void reply_infer_state(void)
{
    if (S.infer_status == 0) {
        emit("e-no-results");
        return;
    }
    if (S.infer_status == 2) {
        line_start();
        put_str("e-infer-engine-");
        put_dec((uint32_t)S.engine_error);
        line_end();
        return;
    }
    line_start();
    put_str("m-infer-n=");
    put_dec(S.r_n);
    put_str(",w=");
    put_dec(S.r_w);
    put_str(",cycles=");
    put_dec(S.r_cycles);
    if (S.seq_mode && S.r_n == 1) { /* min = max = total = cycles: a short line survives */
        put_line_crc();
        line_end();
        return;
    }
    put_str(",min=");
    put_dec(S.r_min);
    put_str(",max=");
    put_dec(S.r_max);
    put_str(",total=");
    put_dec(S.r_total);
    put_line_crc();
    line_end();
}

/* The EEMBC name line (MLPerf Tiny's runner matches ^m-name-dut-\[([^]]+)]$), in both dialects
 * (a sequenced reply is protected by its ack). */
static void cmd_name(void)
{
    line_start();
    put_str("m-name-dut-[tinysnn-");
    put_str(port_board_name());
    put_char(']');
    line_end();
}

/* A profile line ends with its own CRC in the sequenced dialect, so that the host can rebuild
 * the profile from the intact lines of several answers; the plain (EEMBC) lines stay bare for
 * the runner's ^m-(model|profile)-\[([^]]+)]$. */
static void profile_line_end(void)
{
    if (S.seq_mode)
        put_line_crc();
    line_end();
}

static void cmd_profile(void)
{
    line_start(); put_str("m-profile-[tinysnn]"); profile_line_end();
    line_start(); put_str("m-model-["); put_str(TSNN_MODEL_NAME); put_str("]"); profile_line_end();
    line_start(); put_str("m-engine-"); put_str(TSNN_ENGINE_NAME); profile_line_end();
    line_start(); put_str("m-board-"); put_str(port_board_name()); profile_line_end();
    line_start(); put_str("m-neurons-"); put_dec(TSNN_N_NEURONS); profile_line_end();
    line_start(); put_str("m-classes-"); put_dec(TSNN_N_CLASSES); profile_line_end();
    line_start(); put_str("m-clock-hz-"); put_dec(port_clock_hz()); profile_line_end();
    line_start(); put_str("m-cycles-"); put_str(port_cycle_source()); profile_line_end();
    line_start(); put_str("m-db-max-"); put_dec(TSNN_DB_MAX); profile_line_end();
    line_start(); put_str("m-cmd-max-"); put_dec(TSNN_CMD_MAX); profile_line_end();
    line_start(); put_str("m-proto-tinysnn-1"); profile_line_end();
}

static void cmd_help(void)
{
    static const char *const text[] = {
        "m-help-tinysnn firmware, protocol tinysnn-1: plain EEMBC frames and sequenced ones",
        "m-help-name            the board's name",
        "m-help-profile         model, engine, board and limits",
        "m-help-timestamp       m-lap-us-<us> and a pulse on the timestamp pin",
        "m-help-db load N       start loading N bytes: 784 (an image) or 792 (image, seed, id)",
        "m-help-db HEX          append bytes (hex digits)",
        "m-help-infer N [W]     W warm-up inferences, then N timed ones",
        "m-help-results         the last inference: class scores (plain) or spike counts",
        "m-help-help            this text",
    };
    uint32_t i;
    for (i = 0; i < (uint32_t)(sizeof text / sizeof text[0]); i++)
        emit(text[i]);
}

/* A timestamp (EEMBC th_timestamp): the microsecond clock read just before the falling edge
 * of a pulse on the timestamp pin. */
static uint32_t timestamp(void)
{
    const uint32_t us = port_time_us();
    port_timestamp_pulse();
    return us;
}

static void reply_lap(uint32_t us)
{
    line_start();
    put_str("m-lap-us-");
    put_dec(us);
    line_end();
}

/* Score decimals: distinct class votes S_a/n_a != S_b/n_b differ by at least 1/(n_a n_b) >=
 * 1/N^2, so with 10^D >= N^2 their truncations to D decimals differ too, and the largest
 * printed score is the engine's prediction (equal votes print equal: ties to the lowest class,
 * as the engine breaks them and as an argmax does). */
static uint32_t score_decimals(void)
{
    const uint64_t n2 = (uint64_t)TSNN_N_NEURONS * TSNN_N_NEURONS;
    uint64_t p = 1;
    uint32_t d = 0;
    while (p < n2) {
        p *= 10u;
        d++;
    }
    return d;
}

/* 11 + per class up to 5 integer digits, '.', 10 decimals, ',' + ']' must fit one line */
typedef char tsnn_check_results_line_fits[(TSNN_N_CLASSES * 17u + 12u <= LINE_MAX) ? 1 : -1];

/* The EEMBC results line m-results-[s0,s1,...] of the last inference: the class scores of the
 * engine's all-activity vote (docs/fixed-point.md, section 7), the mean spike count of each
 * class's neurons S_c / n_c (0 for a class without neurons), truncated to score_decimals(). */
static void reply_scores(void)
{
    uint32_t sums[TSNN_N_CLASSES];
    const uint32_t decimals = score_decimals();
    uint32_t c, j, k;
    for (c = 0; c < TSNN_N_CLASSES; c++)
        sums[c] = 0;
    for (j = 0; j < TSNN_N_NEURONS; j++)
        if (tsnn_assign[j] >= 0 && (uint32_t)tsnn_assign[j] < TSNN_N_CLASSES)
            sums[(uint32_t)tsnn_assign[j]] += S.r_counts[j];
    line_start();
    put_str("m-results-[");
    for (c = 0; c < TSNN_N_CLASSES; c++) {
        const uint32_t n_c = tsnn_class_size[c];
        uint32_t rest = n_c ? sums[c] % n_c : 0u;
        if (c) put_char(',');
        put_dec(n_c ? sums[c] / n_c : 0u);
        put_char('.');
        for (k = 0; k < decimals; k++) { /* long division: rest < n_c, no overflow */
            rest *= 10u;
            put_char((char)('0' + (n_c ? rest / n_c : 0u)));
            if (n_c) rest %= n_c;
        }
    }
    put_char(']');
    line_end();
}

/* Start a load of n bytes: nothing has arrived, the buffer reads as zeros. */
static void db_reset(uint32_t n, int sequenced)
{
    uint32_t i;
    S.db_expect = n;
    S.db_sequenced = sequenced;
    S.db_len = 0;
    S.db_crc = 0;
    S.db_fill = 0;
    S.db_put_used = 0;
    for (i = 0; i < n; i++)
        S.db[i] = 0; /* unfilled bytes read as 0 in db map's buffer CRC */
    for (i = 0; i < (uint32_t)sizeof(S.db_filled); i++)
        S.db_filled[i] = 0;
}

static void cmd_db_load(uint32_t n)
{
    db_reset(n, S.seq_mode);
    reply_db_state();
}

/* db put OFF HEX, only inside a posted frame (checked by the caller): write the bytes at OFF;
 * db put OFF zLEN writes LEN zero bytes (most of an image is black). Idempotent, so the host may
 * send it any number of times and never waits for an answer. Anything wrong: ignored. */
static void cmd_db_put(const char *off_tok, uint32_t off_len, const char *data, uint32_t n)
{
    uint32_t off, bytes, i;
    if (S.db_expect == 0 || !S.db_sequenced || S.db_len != 0 || n == 0 ||
        parse_dec(off_tok, off_len, TSNN_DB_MAX, &off) != 0 || off > S.db_expect)
        return;
    if (data[0] == 'z') {
        if (parse_dec(data + 1, n - 1, TSNN_DB_MAX, &bytes) != 0 || bytes == 0 ||
            bytes > S.db_expect - off)
            return;
        for (i = 0; i < bytes; i++)
            S.db[off + i] = 0;
    } else {
        if (n % 2u)
            return;
        bytes = n / 2u;
        if (bytes > S.db_expect - off)
            return;
        for (i = 0; i < n; i++)
            if (hex_val(data[i]) < 0)
                return;
        for (i = 0; i < bytes; i++)
            S.db[off + i] = (uint8_t)((hex_val(data[2 * i]) << 4) | hex_val(data[2 * i + 1]));
    }
    db_mark(off, bytes);
    S.db_put_used = 1;
}

/* One group of db map: 32 chunks of g bytes from chunk `first`, bit k set when chunk first+k
 * has fully arrived. */
static uint32_t db_map_bits(uint32_t g, uint32_t first, uint32_t chunks)
{
    uint32_t bits = 0, k;
    for (k = 0; k < 32u && first + k < chunks; k++) {
        uint32_t off = (first + k) * g;
        uint32_t len = off + g <= S.db_expect ? g : S.db_expect - off;
        if (db_range_filled(off, len))
            bits |= 1u << k;
    }
    return bits;
}

/* db map G: how much of the load has arrived and which G-byte chunks are complete, in short
 * lines each with its own CRC (read-only, so the host may rebuild the answer from the intact
 * lines of several attempts). The first line names the groups of 32 chunks that still miss
 * something; only those groups follow. The buffer CRC counts unfilled bytes as 0: it is the
 * payload's CRC once the load is complete. */
static void cmd_db_map(uint32_t g)
{
    uint32_t chunks, group, mask = 0;
    if (S.db_expect == 0) {
        emit("e-db-not-loading");
        return;
    }
    chunks = (S.db_expect + g - 1u) / g;
    for (group = 0; group * 32u < chunks && group < 32u; group++) {
        uint32_t full = (chunks - group * 32u >= 32u) ? 0xFFFFFFFFu
                                                     : (1u << (chunks - group * 32u)) - 1u;
        if (db_map_bits(g, group * 32u, chunks) != full)
            mask |= 1u << group;
    }
    line_start();
    put_str("m-db-fill-");
    put_dec(S.db_fill);
    put_str("-of-");
    put_dec(S.db_expect);
    put_char('-');
    put_hex(tsnn_crc32_update(0, S.db, S.db_expect), 8);
    put_char('-');
    put_hex(mask, 8);
    put_line_crc();
    line_end();
    for (group = 0; group < 32u; group++) {
        if (!(mask & (1u << group)))
            continue;
        line_start();
        put_str("m-db-map-");
        put_dec(group * 32u);
        put_char('-');
        put_hex(db_map_bits(g, group * 32u, chunks), 8);
        put_line_crc();
        line_end();
    }
}

static void cmd_db_data(const char *hex, uint32_t n)
{
    uint32_t bytes, i;
    if (S.db_expect == 0) {
        emit("e-db-not-loading");
        return;
    }
    if (S.db_sequenced && !S.seq_mode) {
        emit("e-db-unsequenced"); /* e.g. a sequenced frame whose '@' was lost on the line */
        return;
    }
    if (S.db_put_used) {
        emit("e-db-mode"); /* appends need a cursor that random-access puts do not keep */
        return;
    }
    if (n % 2u) {
        emit("e-db-bad-hex");
        return;
    }
    for (i = 0; i < n; i++) {
        if (hex_val(hex[i]) < 0) {
            emit("e-db-bad-hex");
            return;
        }
    }
    bytes = n / 2u;
    if (bytes > S.db_expect - S.db_len) {
        emit("e-db-overflow");
        return;
    }
    for (i = 0; i < bytes; i++) {
        uint8_t b = (uint8_t)((hex_val(hex[2 * i]) << 4) | hex_val(hex[2 * i + 1]));
        S.db[S.db_len + i] = b;
    }
    S.db_crc = tsnn_crc32_update(S.db_crc, S.db + S.db_len, bytes);
    db_mark(S.db_len, bytes);
    S.db_len += bytes;
    reply_db_state();
}

static void cmd_infer(uint32_t n, uint32_t w)
{
    uint32_t i, sid, seed;
    uint8_t pred = 0;
    int rc = 0;
    const int eembc = !S.seq_mode; /* a plain frame gets the EEMBC / MLPerf Tiny reply */
    if ((S.db_expect != TSNN_SAMPLE_BYTES && S.db_expect != TSNN_IMAGE_BYTES) || !db_complete()) {
        emit("e-db-incomplete");
        return;
    }
    if (S.db_expect == TSNN_SAMPLE_BYTES) {
        seed = rd_le32(S.db + TSNN_IMAGE_BYTES);
        sid = rd_le32(S.db + TSNN_IMAGE_BYTES + 4u);
    } else {
        seed = TSNN_IMAGE_ONLY_SEED;
        sid = TSNN_IMAGE_ONLY_SAMPLE_ID;
    }
    if (eembc) {
        line_start(); put_str("m-warmup-start-"); put_dec(w); line_end();
    }
    for (i = 0; i < w && rc == 0; i++)
        rc = tsnn_infer(S.db, seed, sid, S.r_counts, &pred);
    if (eembc) {
        emit("m-warmup-done");
        line_start(); put_str("m-infer-start-"); put_dec(n); line_end();
    }
    S.r_min = 0xFFFFFFFFu;
    S.r_max = 0;
    S.r_total = 0;
    S.r_cycles = 0;
    port_uart_flush(); /* the window holds inferences only, no line still being sent */
    S.r_lap_start = timestamp();
    for (i = 0; i < n && rc == 0; i++) {
        uint32_t t0 = port_cycles();
        uint32_t dt;
        rc = tsnn_infer(S.db, seed, sid, S.r_counts, &pred);
        dt = port_cycles() - t0;
        S.r_cycles = dt;
        if (dt < S.r_min) S.r_min = dt;
        if (dt > S.r_max) S.r_max = dt;
        S.r_total += dt; /* wraps after 2^32 cycles; documented */
    }
    S.r_lap_end = timestamp();
    if (rc != 0) {
        S.infer_status = 2;
        S.engine_error = rc;
    } else {
        S.infer_status = 1;
        S.r_pred = pred;
        S.r_sid = sid;
        S.r_seed = seed;
        S.r_n = n;
        S.r_w = w;
    }
    if (eembc) {
        reply_lap(S.r_lap_start);
        reply_lap(S.r_lap_end);
        emit("m-infer-done");
        if (S.infer_status == 1) {
            reply_scores();
            return;
        }
    }
    reply_infer_state();
}

static void cmd_results(void)
{
    uint32_t i, sum = 0;
    if (S.infer_status != 1) {
        emit(S.infer_status == 0 ? "e-no-results" : "e-infer-failed");
        return;
    }
    if (!S.seq_mode) {
        reply_scores(); /* the EEMBC results */
        return;
    }
    for (i = 0; i < TSNN_N_NEURONS; i++)
        sum += S.r_counts[i];
    line_start();
    put_str("m-results-sid=");
    put_dec(S.r_sid);
    put_str(",seed=");
    put_dec(S.r_seed);
    put_str(",pred=");
    put_dec(S.r_pred);
    put_str(",cycles=");
    put_dec(S.r_cycles);
    put_str(",n=");
    put_dec(TSNN_N_NEURONS);
    put_str(",sum=");
    put_dec(sum);
    put_line_crc();
    line_end();
    /* Only the neurons that spiked, as index:count, TSNN_SPIKES_PER_LINE to a line: counts are
     * never negative, so once the host holds lines adding up to `sum`, every other neuron's
     * count is zero (a few short lines survive a damaged link far better than 400 counts). */
    for (i = 0; i < TSNN_N_NEURONS;) {
        uint32_t k = 0;
        while (i < TSNN_N_NEURONS && S.r_counts[i] == 0)
            i++;
        if (i >= TSNN_N_NEURONS)
            break;
        line_start();
        put_str("m-spikes-");
        for (; i < TSNN_N_NEURONS && k < TSNN_SPIKES_PER_LINE; i++) {
            if (S.r_counts[i] == 0)
                continue;
            if (k++) put_char('.');
            put_dec(i);
            put_char(':');
            put_dec(S.r_counts[i]);
        }
        put_line_crc();
        line_end();
    }
}

/* Execute a command body (sequence suffix already removed). dup: a retransmission of the
 * last executed sequenced command, whose state changes must not be applied twice. Returns 1
 * (executed), 0 (unknown command) or DISPATCH_SILENT (not to be answered at all). */
#define DISPATCH_SILENT 2
static int dispatch(const char *body, uint32_t len, int dup)
{
    tokens t;
    uint32_t a, b;
    tokenize(body, len, &t);
    if (t.count == 1 && tok_is(&t, 0, "name")) {
        cmd_name();
    } else if (t.count == 1 && tok_is(&t, 0, "profile")) {
        cmd_profile();
    } else if (t.count == 1 && tok_is(&t, 0, "results")) {
        cmd_results();
    } else if (t.count == 1 && tok_is(&t, 0, "timestamp")) {
        reply_lap(timestamp());
    } else if (t.count == 1 && tok_is(&t, 0, "help")) {
        cmd_help();
    } else if (t.count == 3 && tok_is(&t, 0, "db") && tok_is(&t, 1, "load")) {
        if (parse_dec(t.p[2], t.n[2], TSNN_DB_MAX, &a) != 0 || a == 0) {
            emit("e-db-size");
        } else if (dup) {
            reply_db_state();
        } else {
            cmd_db_load(a);
        }
    } else if (t.count >= 2 && tok_is(&t, 0, "db") && tok_is(&t, 1, "put")) {
        /* a posted frame whose '!' was lost on the line: silent, like every posted frame */
        return DISPATCH_SILENT;
    } else if (t.count == 3 && tok_is(&t, 0, "db") && tok_is(&t, 1, "map")) {
        if (parse_dec(t.p[2], t.n[2], TSNN_DB_MAX, &a) != 0 || a == 0)
            emit("e-db-map-args");
        else
            cmd_db_map(a);
    } else if (t.count == 2 && tok_is(&t, 0, "db")) {
        if (dup)
            reply_db_state();
        else
            cmd_db_data(t.p[1], t.n[1]);
    } else if ((t.count == 2 || t.count == 3) && tok_is(&t, 0, "infer")) {
        b = 0;
        if (parse_dec(t.p[1], t.n[1], TSNN_MAX_RUNS, &a) != 0 || a == 0 ||
            (t.count == 3 && parse_dec(t.p[2], t.n[2], TSNN_MAX_RUNS, &b) != 0)) {
            emit("e-infer-args");
        } else if (dup) {
            reply_infer_state();
        } else {
            cmd_infer(a, b);
        }
    } else {
        emit("e-unknown-command");
        return 0;
    }
    return 1;
}

/* A complete frame arrived (S.cmd[0..S.cmd_len), or an overflow). */
static void process_frame(void)
{
    uint32_t start = 0, end = S.cmd_len, at, i, body_end, copies;
    uint32_t seq = 0, crc = 0;
    int dup, seq_like;
    const char *body = S.cmd;

    S.seq_mode = 0;
    if (S.overflow) {
        emit("e-frame-overflow");
        emit_ready();
        return;
    }
    while (start < end && is_space(body[start])) start++;
    while (end > start && is_space(body[end - 1])) end--;
    if (start == end)
        return; /* an empty frame (e.g. a lone '%' sent to resynchronise) is ignored */

    /* Posted frame: BODY!CCCCCCCC, the CRC-32 of BODY. Executed when intact, never answered
     * (so a host may stream many without waiting); only db load and db put may be posted (a
     * load posted twice in a row changes nothing: FIFO links put both before the puts). A frame
     * with a '!' and no '@' is taken for a posted one (no other frame has one), so that a
     * damaged posted frame, or two run together when a '%' was lost, stays silent instead of
     * answering an error into the middle of the host's next exchange. A frame with an '@' is a
     * sequenced one even when it holds a '!' (posted bodies never hold an '@'): one damaged
     * byte (a space, a '1', an 'a' or its '%' one bit away from '!') must get an error answer
     * at once, not the silence that makes the host wait out its timeout. */
    for (i = start; i < end && body[i] != '@'; i++)
        ;
    seq_like = i < end;
    for (i = start; i < end && body[i] != '!'; i++)
        ;
    if (i < end && !seq_like) {
        if (end - start < 10u || body[end - 9u] != '!')
            return;
        tokens t;
        if (parse_hex_fixed(body + end - 8u, 8, &crc) == 0 &&
            tsnn_crc32_update(0, (const uint8_t *)(body + start), end - 9u - start) == crc) {
            tokenize(body + start, end - 9u - start, &t);
            uint32_t n;
            if (t.count == 4 && tok_is(&t, 0, "db") && tok_is(&t, 1, "put"))
                cmd_db_put(t.p[2], t.n[2], t.p[3], t.n[3]);
            else if (t.count == 3 && tok_is(&t, 0, "db") && tok_is(&t, 1, "load") &&
                     parse_dec(t.p[2], t.n[2], TSNN_DB_MAX, &n) == 0 && n > 0)
                db_reset(n, 1); /* the start of a stream of puts */
        }
        return; /* a damaged or refused posted frame is dropped without a word */
    }

    /* Sequenced frame: BODY@SSSS:CCCCCCCC, the last '@' separates the suffix. */
    at = end;
    for (i = end; i > start; i--) {
        if (body[i - 1] == '@') {
            at = i - 1;
            break;
        }
    }
    if (at != end) {
        if (end - at != 14u || body[at + 5] != ':' ||
            parse_hex_fixed(body + at + 1, 4, &seq) != 0 ||
            parse_hex_fixed(body + at + 6, 8, &crc) != 0) {
            emit("e-frame-malformed");
            emit_ready();
            return;
        }
        if (tsnn_crc32_update(0, (const uint8_t *)(body + start), at + 5u - start) != crc) {
            emit("e-frame-crc");
            emit_ready();
            return;
        }
        body_end = at;
        copies = 1;
        /* BODY*R: answer R times, the copies after the first as to a retransmission (nothing
         * changes twice); on a damaged link one of R copies of each self-checking line gets
         * through where a single copy rarely would */
        for (i = at; i > start && at - i < 3u && body[i - 1] >= '0' && body[i - 1] <= '9'; i--)
            ;
        if (i < at && i > start && body[i - 1] == '*') {
            if (parse_dec(body + i, at - i, TSNN_REPLY_COPIES_MAX, &copies) != 0 || copies == 0) {
                emit("e-frame-copies");
                emit_ready();
                return;
            }
            body_end = i - 1u;
        }
        S.seq_mode = 1;
        S.reply_crc = 0;
        S.reply_lines = 0;
        dup = S.have_seq && S.last_seq == seq;
        for (i = 0; i < copies; i++)
            (void)dispatch(body + start, body_end - start, dup || i > 0);
        S.have_seq = 1;
        S.last_seq = seq;
        S.seq_mode = 0;
        line_start();
        put_str("m-ack-");
        put_hex(seq, 4);
        put_char('-');
        put_dec(S.reply_lines);
        put_char('-');
        put_hex(S.reply_crc, 8);
        line_end();
        emit_ready();
        return;
    }
    /* Plain EEMBC-style frame: executed as is. A plain `name` starts a new host session and
     * ends the retransmission memory; nothing else does (line noise can look like a plain
     * db command whose '@' was lost, and must not make a retransmission look new). */
    if (end - start == 4u && body[start] == 'n' && body[start + 1] == 'a' &&
        body[start + 2] == 'm' && body[start + 3] == 'e')
        S.have_seq = 0;
    if (dispatch(body + start, end - start, 0) != DISPATCH_SILENT)
        emit_ready();
}

void tsnn_proto_feed(uint8_t byte)
{
    if (byte == '%') {
        process_frame();
        S.cmd_len = 0;
        S.overflow = 0;
        return;
    }
    if (S.cmd_len < TSNN_CMD_MAX)
        S.cmd[S.cmd_len++] = (char)byte;
    else
        S.overflow = 1;
}

void tsnn_proto_init(void)
{
    uint8_t *p = (uint8_t *)&S;
    uint32_t i;
    for (i = 0; i < (uint32_t)sizeof(S); i++)
        p[i] = 0;
}

void tsnn_proto_banner(void)
{
    line_start();
    put_str("m-boot-tinysnn-");
    put_str(port_board_name());
    line_end();
    emit_ready();
}
