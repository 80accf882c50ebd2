/*
 * wallet - a terminal wallet on the C client SDK (include/arbiter/client.h):
 * one account of a ledger stream, its confirmed balance, the transfers still
 * waiting for the server's verdict, and the optimistic balance the SDK
 * predicts from them. It shows what a user of an optimistic client sees: a
 * transfer shows at once, and a rejected one is rolled back.
 *
 *   wallet --url ws://127.0.0.1:8080/ --id alice [--account alice]
 *          [--stream ledger:demo] [--outbox FILE]
 *
 * --account defaults to the id, --stream to ledger:demo (what `arbiterd
 * --demo` creates, with accounts alice, bob and carol), --outbox to
 * ./wallet-<id>.outbox. The outbox keeps proposals across runs: a transfer
 * made offline and not yet decided when the wallet stops is sent by the
 * next run with the same outbox.
 *
 * Commands, one per line on stdin:
 *
 *   send TO AMOUNT [MEMO]    transfer AMOUNT (minor units) from the account to
 *                            TO, OPTIMISTIC: the optimistic balance moves now
 *   send! TO AMOUNT [MEMO]   the same, PESSIMISTIC: nothing moves until the
 *                            server commits it
 *   offline | online         drop the connection and stay off / come back
 *   show                     print the status block now
 *   quit (or end of input)   stop reading; see "Leaving" below
 *
 * Output, on stdout, one fact per line; the first word says what the line is
 * and the fields after it never change order, so a script can grep them
 * (free text, a server's message, comes last and has control bytes replaced
 * by '?'). The status block is printed whenever the view or the connection
 * changed (at most once per turn of the loop) and on `show`:
 *
 *   status begin
 *   state online|connecting|offline [CODE]       CODE: why it went offline
 *   confirmed ACCOUNT BALANCE @vVERSION          the server's; BALANCE "-"
 *                                                while no state has arrived
 *   pending #SEQ -> TO AMOUNT applied            shows in the optimistic balance
 *   pending #SEQ -> TO AMOUNT predicted CODE     the SDK predicts this rejection:
 *                                                not shown, the server decides
 *   pending #SEQ -> TO AMOUNT unapplied          no state to predict on yet
 *   pending #SEQ -> TO AMOUNT awaiting           PESSIMISTIC: shows once committed
 *   pending #SEQ STREAM ACTION                   any other proposal in the outbox
 *   pending more N                               the list was cut after 64 lines
 *   optimistic ACCOUNT BALANCE                   confirmed + the applied transfers
 *   status end
 *
 * and, as they happen:
 *
 *   proposed #SEQ -> TO AMOUNT optimistic|pessimistic
 *   outcome #SEQ committed @vSEQ_LAST
 *   outcome #SEQ rejected CODE: MESSAGE -- rolled back|as predicted|was not applied
 *   event @vSEQ TYPE FROM -> TO AMOUNT by CLIENT_ID   a committed transfer touching
 *   event @vSEQ TYPE ACCOUNT AMOUNT by CLIENT_ID      the account, or a deposit etc.
 *   error TEXT                                        a command that was not done, or
 *                                                     an error the server sent
 *   input closed, pending N                           end of input (or quit)
 *   exit, pending N                                   N proposals left in the outbox
 *
 * SEQ after '#' is the proposal's client_seq; after "@v" a stream seq.
 * "rolled back" says the rejected transfer had been shown in the optimistic
 * balance the last time it was printed, "as predicted" that the SDK had
 * already predicted this rejection (so the balance never showed it).
 *
 * The loop is the SDK's single-thread "game loop" style: poll() on stdin for
 * at most LOOP_POLL_MS, run the commands that came, print the status if it
 * is dirty, then arb_client_service(client, 0), which does the network and
 * disk work and runs the callbacks on this thread. The callbacks only print
 * outcome and event lines and mark the status dirty; the block itself is
 * printed once per turn at most.
 *
 * Leaving. At end of input (or `quit`) the wallet keeps servicing until its
 * outbox is empty or DRAIN_MS passed, so a piped script's transfers are
 * decided before it exits; when the user had put it `offline`, nothing can
 * drain and it leaves at once. SIGINT/SIGTERM leave at once. Either way the
 * undecided proposals stay in the outbox file. Exit status: 0, 2 for a bad
 * command line, 1 when the client cannot start (outbox not usable).
 */
#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "arbiter/client.h"
#include "arbiter/error.h"

enum { EXIT_FAILED = 1, EXIT_USAGE = 2 };

/* How long one turn waits for input before it services the client: the
 * latency a network message may wait, since the SDK gives no descriptor to
 * wait on together with stdin. */
#define LOOP_POLL_MS 20
/* After the end of input: how long undecided proposals are waited for. */
#define DRAIN_MS 5000
/* One command line; longer lines are refused whole. */
#define LINE_BYTES_MAX 1024
/* Pending lines in one status block, and the outbox entries looked at for
 * them (arb_client_pending_at walks the list from its start). */
#define PENDING_LINES_MAX 64
#define PENDING_SCAN_MAX 1024
/* One printed name or message, after cleaning. */
#define TEXT_BYTES_MAX 512

typedef struct options {
    const char *url;
    const char *client_id;
    const char *account;
    const char *stream;
    const char *outbox;
    char outbox_default[256];
} options;

/* How a pending proposal was last printed: what "rolled back" is told from. */
typedef struct shown {
    uint64_t client_seq;
    bool applied;
    int predicted_code;
} shown;

typedef struct wallet {
    const options *options;
    arb_client *client;
    bool dirty; /* the status block is out of date */
    bool want_online;
    arb_client_state state;
    int state_code;
    shown shown[PENDING_LINES_MAX];
    size_t shown_count;
    char line[LINE_BYTES_MAX + 1];
    size_t line_len;
    bool line_too_long; /* the rest of the current line is skipped */
    bool input_closed;
} wallet;

static volatile sig_atomic_t stop_requested;

static void on_signal(int signal_number)
{
    (void)signal_number;
    stop_requested = 1;
}

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Text from outside (a server's message, an account name from the outbox)
 * made safe for one output line. */
static const char *clean(char out[TEXT_BYTES_MAX], const char *text)
{
    size_t i = 0;
    for (; text != NULL && text[i] != '\0' && i < TEXT_BYTES_MAX - 1; i++)
        out[i] = (unsigned char)text[i] < 0x20 || text[i] == 0x7f ? '?' : text[i];
    out[i] = '\0';
    return out;
}

/* One output line. */
static void say(const char *format, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vprintf(format, args);
    va_end(args);
    putchar('\n');
}

/* What was shown of pending proposals. */

static shown *shown_find(wallet *w, uint64_t client_seq)
{
    for (size_t i = 0; i < w->shown_count; i++)
        if (w->shown[i].client_seq == client_seq)
            return &w->shown[i];
    return NULL;
}

static void shown_put(wallet *w, uint64_t client_seq, bool applied, int predicted_code)
{
    shown *entry = shown_find(w, client_seq);
    if (entry == NULL) {
        if (w->shown_count == PENDING_LINES_MAX) { /* forget the oldest */
            memmove(&w->shown[0], &w->shown[1], (PENDING_LINES_MAX - 1) * sizeof w->shown[0]);
            w->shown_count--;
        }
        entry = &w->shown[w->shown_count++];
    }
    *entry = (shown){client_seq, applied, predicted_code};
    assert(w->shown_count <= PENDING_LINES_MAX);
}

/* The status block. */

/* The account's balance in a stream view; false when it is not there. */
static bool balance_in(const json_t *view, const char *account, json_int_t *balance_out)
{
    const json_t *balance =
        json_object_get(json_object_get(json_object_get(view, "accounts"), account), "balance");
    if (!json_is_integer(balance))
        return false;
    *balance_out = json_integer_value(balance);
    return true;
}

static void say_balance(const char *what, const options *opt, const json_t *view,
                        const char *suffix)
{
    json_int_t balance;
    if (balance_in(view, opt->account, &balance))
        say("%s %s %lld%s", what, opt->account, (long long)balance, suffix);
    else
        say("%s %s -%s", what, opt->account, suffix);
}

/* The word that says how a pending transfer shows; code set for "predicted". */
static const char *pending_status(const arb_client_pending *p)
{
    if (p->policy != ARB_POLICY_OPTIMISTIC)
        return "awaiting";
    if (p->applied)
        return "applied";
    return p->predicted_code != 0 ? "predicted" : "unapplied";
}

static void say_pending(wallet *w, const arb_client_pending *p)
{
    char to[TEXT_BYTES_MAX], stream[TEXT_BYTES_MAX], action[TEXT_BYTES_MAX];
    const char *from = json_string_value(json_object_get(p->args, "from"));
    const json_t *amount = json_object_get(p->args, "amount");
    bool mine = strcmp(p->stream, w->options->stream) == 0 && strcmp(p->action, "transfer") == 0 &&
                from != NULL && strcmp(from, w->options->account) == 0 && json_is_integer(amount);
    unsigned long long seq = (unsigned long long)p->client_seq;
    if (!mine) {
        say("pending #%llu %s %s", seq, clean(stream, p->stream), clean(action, p->action));
        return;
    }
    const char *status = pending_status(p);
    clean(to, json_string_value(json_object_get(p->args, "to")));
    long long value = (long long)json_integer_value(amount);
    if (strcmp(status, "predicted") == 0)
        say("pending #%llu -> %s %lld predicted %s", seq, to, value,
            arb_err_name(p->predicted_code));
    else
        say("pending #%llu -> %s %lld %s", seq, to, value, status);
    shown_put(w, p->client_seq, p->applied, p->predicted_code);
}

static void say_pending_all(wallet *w)
{
    size_t count = arb_client_pending_count(w->client);
    size_t lines = 0;
    arb_client_pending p;
    for (size_t i = 0; i < count && i < PENDING_SCAN_MAX && lines < PENDING_LINES_MAX; i++) {
        if (arb_client_pending_at(w->client, i, &p) != 0)
            break;
        say_pending(w, &p);
        lines++;
    }
    if (count > lines)
        say("pending more %zu", count - lines);
}

static const char *state_name(arb_client_state state)
{
    switch (state) {
    case ARB_CLIENT_ONLINE:
        return "online";
    case ARB_CLIENT_CONNECTING:
        return "connecting";
    case ARB_CLIENT_OFFLINE:
        return "offline";
    }
    return "unknown";
}

static void say_status(wallet *w)
{
    const options *opt = w->options;
    uint64_t version = 0;
    json_t *confirmed = arb_client_confirmed(w->client, opt->stream, &version);
    json_t *view = arb_client_view(w->client, opt->stream, NULL);
    char suffix[32];
    snprintf(suffix, sizeof suffix, " @v%llu", (unsigned long long)version);
    say("status begin");
    if (w->state == ARB_CLIENT_OFFLINE && w->state_code != 0)
        say("state offline %s", arb_err_name(w->state_code));
    else
        say("state %s", state_name(w->state));
    say_balance("confirmed", opt, confirmed, suffix);
    say_pending_all(w);
    say_balance("optimistic", opt, view, "");
    say("status end");
    json_decref(view);
    json_decref(confirmed);
    w->dirty = false;
}

/* The SDK's callbacks: they run inside arb_client_service (and inside the
 * calls that change the view), on this thread. */

static void on_view_changed(void *user, const char *stream)
{
    wallet *w = user;
    if (strcmp(stream, w->options->stream) == 0)
        w->dirty = true;
}

static void on_outcome(void *user, const arb_client_outcome *outcome)
{
    wallet *w = user;
    unsigned long long seq = (unsigned long long)outcome->client_seq;
    if (outcome->committed) {
        say("outcome #%llu committed @v%llu", seq, (unsigned long long)outcome->seq_last);
    } else {
        const shown *was = shown_find(w, outcome->client_seq);
        const char *what = was == NULL                            ? "was not applied"
                           : was->applied                         ? "rolled back"
                           : was->predicted_code == outcome->code ? "as predicted"
                                                                  : "was not applied";
        char message[TEXT_BYTES_MAX];
        say("outcome #%llu rejected %s: %s -- %s", seq, arb_err_name(outcome->code),
            clean(message, outcome->message), what);
    }
    shown *entry = shown_find(w, outcome->client_seq);
    if (entry != NULL) { /* keep the rest in order, oldest first */
        size_t index = (size_t)(entry - w->shown);
        memmove(entry, entry + 1, (w->shown_count - index - 1) * sizeof *entry);
        w->shown_count--;
    }
    w->dirty = true;
}

static void on_connection(void *user, arb_client_state state, int code)
{
    wallet *w = user;
    w->state = state;
    w->state_code = code;
    w->dirty = true;
}

static void say_event(const wallet *w, const arb_event *event)
{
    const char *account = w->options->account;
    const char *from = json_string_value(json_object_get(event->data, "from"));
    const char *to = json_string_value(json_object_get(event->data, "to"));
    const char *owner = json_string_value(json_object_get(event->data, "account"));
    long long amount = (long long)json_integer_value(json_object_get(event->data, "amount"));
    unsigned long long seq = (unsigned long long)event->seq;
    char a[TEXT_BYTES_MAX], b[TEXT_BYTES_MAX], type[TEXT_BYTES_MAX], by[TEXT_BYTES_MAX];
    clean(type, event->type);
    clean(by, event->client_id);
    if (from != NULL && to != NULL && (strcmp(from, account) == 0 || strcmp(to, account) == 0))
        say("event @v%llu %s %s -> %s %lld by %s", seq, type, clean(a, from), clean(b, to), amount,
            by);
    else if (owner != NULL && strcmp(owner, account) == 0)
        say("event @v%llu %s %s %lld by %s", seq, type, clean(a, owner), amount, by);
}

static void on_events(void *user, const char *stream, const arb_event *events, size_t count)
{
    wallet *w = user;
    if (strcmp(stream, w->options->stream) != 0)
        return;
    for (size_t i = 0; i < count; i++)
        say_event(w, &events[i]);
}

static void on_error(void *user, int code, const char *message)
{
    (void)user;
    char text[TEXT_BYTES_MAX];
    say("error server %s: %s", arb_err_name(code), clean(text, message));
}

/* Commands. */

/* The next space-separated word of *cursor (NUL-terminated in place), or
 * NULL; *cursor moves past it. */
static char *next_word(char **cursor)
{
    char *s = *cursor;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '\0') {
        *cursor = s;
        return NULL;
    }
    char *word = s;
    while (*s != '\0' && *s != ' ' && *s != '\t')
        s++;
    if (*s != '\0')
        *s++ = '\0';
    *cursor = s;
    return word;
}

/* An amount as typed: decimal digits only. The range is the rules' to
 * check (0 is proposed, and the server answers INVALID_AMOUNT). */
static bool parse_amount(const char *text, json_int_t *out)
{
    size_t len = strlen(text);
    if (len == 0 || len > 18 || strspn(text, "0123456789") != len)
        return false;
    *out = (json_int_t)strtoll(text, NULL, 10);
    return true;
}

static bool send_with(wallet *w, char *rest, arb_policy policy)
{
    char *to = next_word(&rest);
    char *amount_text = next_word(&rest);
    json_int_t amount;
    if (to == NULL || amount_text == NULL || !parse_amount(amount_text, &amount))
        return false;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    json_t *args =
        json_pack("{s:s, s:s, s:I}", "from", w->options->account, "to", to, "amount", amount);
    /* json_string refuses text that is not UTF-8, and set_new then fails. */
    if (args != NULL && *rest != '\0' &&
        json_object_set_new(args, "memo", json_string(rest)) != 0) {
        json_decref(args);
        args = NULL;
    }
    if (args == NULL) {
        say("error send: names and memo must be UTF-8 text");
        return true;
    }
    uint64_t client_seq = 0;
    int rc =
        arb_client_propose(w->client, w->options->stream, "transfer", args, policy, &client_seq);
    json_decref(args);
    if (rc != 0) {
        say("error send: %s (%s)", arb_err_name(rc), arb_err_message(rc));
        return true;
    }
    char clean_to[TEXT_BYTES_MAX];
    say("proposed #%llu -> %s %lld %s", (unsigned long long)client_seq, clean(clean_to, to),
        (long long)amount, policy == ARB_POLICY_OPTIMISTIC ? "optimistic" : "pessimistic");
    /* Remember how it shows now: its verdict may come before the next status. */
    size_t count = arb_client_pending_count(w->client);
    arb_client_pending p;
    if (count > 0 && arb_client_pending_at(w->client, count - 1, &p) == 0 &&
        p.client_seq == client_seq)
        shown_put(w, client_seq, p.applied, p.predicted_code);
    return true;
}

static bool command_send(wallet *w, char *rest)
{
    return send_with(w, rest, ARB_POLICY_OPTIMISTIC);
}

static bool command_send_pessimistic(wallet *w, char *rest)
{
    return send_with(w, rest, ARB_POLICY_PESSIMISTIC);
}

static bool command_online(wallet *w, char *rest)
{
    if (next_word(&rest) != NULL)
        return false;
    w->want_online = true;
    arb_client_set_online(w->client, true); /* the connection callback reports the change */
    return true;
}

static bool command_offline(wallet *w, char *rest)
{
    if (next_word(&rest) != NULL)
        return false;
    w->want_online = false;
    arb_client_set_online(w->client, false); /* the connection callback reports the change */
    return true;
}

static bool command_show(wallet *w, char *rest)
{
    if (next_word(&rest) != NULL)
        return false;
    say_status(w);
    return true;
}

static bool command_quit(wallet *w, char *rest)
{
    if (next_word(&rest) != NULL)
        return false;
    w->input_closed = true;
    return true;
}

/* The command table: a handler returns false for wrong arguments, and the
 * dispatcher then prints the command's usage. */
typedef struct command {
    const char *name;
    bool (*run)(wallet *w, char *rest);
    const char *usage;
} command;

static const command commands[] = {
    {"send", command_send, "send TO AMOUNT [MEMO]"},
    {"send!", command_send_pessimistic, "send! TO AMOUNT [MEMO]"},
    {"offline", command_offline, "offline"},
    {"online", command_online, "online"},
    {"show", command_show, "show"},
    {"quit", command_quit, "quit"},
};

static void run_command(wallet *w, char *line)
{
    char *rest = line;
    char *name = next_word(&rest);
    if (name == NULL)
        return; /* an empty line */
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(commands[i].name, name) == 0) {
            if (!commands[i].run(w, rest))
                say("error usage: %s", commands[i].usage);
            return;
        }
    }
    char text[TEXT_BYTES_MAX];
    say("error unknown command %s (send, send!, offline, online, show, quit)", clean(text, name));
}

/* Input: bytes from stdin into lines, each run as it completes. */

static void take_bytes(wallet *w, const char *bytes, size_t len)
{
    for (size_t i = 0; i < len && !w->input_closed; i++) {
        if (bytes[i] != '\n') {
            if (w->line_len < LINE_BYTES_MAX)
                w->line[w->line_len++] = bytes[i];
            else
                w->line_too_long = true;
            continue;
        }
        if (w->line_len > 0 && w->line[w->line_len - 1] == '\r')
            w->line_len--;
        w->line[w->line_len] = '\0';
        if (w->line_too_long)
            say("error line longer than %d bytes: ignored", LINE_BYTES_MAX);
        else
            run_command(w, w->line);
        w->line_len = 0;
        w->line_too_long = false;
    }
    assert(w->line_len <= LINE_BYTES_MAX);
}

/* Wait up to LOOP_POLL_MS for input and take what came. */
static void read_input(wallet *w)
{
    struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
    int ready = poll(&pfd, 1, LOOP_POLL_MS);
    if (ready <= 0)
        return; /* nothing, or a signal */
    char bytes[4096];
    ssize_t n = read(STDIN_FILENO, bytes, sizeof bytes);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n > 0) {
        take_bytes(w, bytes, (size_t)n);
        return;
    }
    /* End of input (or an error reading it): a last line without '\n'. */
    if (w->line_len > 0)
        take_bytes(w, "\n", 1);
    w->input_closed = true;
}

/* Setting up. */

static void usage(FILE *out)
{
    fputs("usage: wallet --url ws://HOST:PORT/ --id CLIENT_ID [--account ACCOUNT]\n"
          "              [--stream ledger:NAME] [--outbox FILE]\n"
          "  --account  the account to spend from (default: the client id)\n"
          "  --stream   the ledger stream (default: ledger:demo)\n"
          "  --outbox   the SDK's outbox file (default: ./wallet-<id>.outbox)\n"
          "commands on stdin: send TO AMOUNT [MEMO] | send! TO AMOUNT [MEMO] | offline |\n"
          "                   online | show | quit\n",
          out);
}

/* 0, or -1 for a bad command line; 1 for --help. */
static int parse_options(int argc, char **argv, options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->stream = "ledger:demo";
    for (int i = 1; i < argc; i++) {
        const char *name = argv[i];
        if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
            return 1;
        const char **slot = strcmp(name, "--url") == 0       ? &opt->url
                            : strcmp(name, "--id") == 0      ? &opt->client_id
                            : strcmp(name, "--account") == 0 ? &opt->account
                            : strcmp(name, "--stream") == 0  ? &opt->stream
                            : strcmp(name, "--outbox") == 0  ? &opt->outbox
                                                             : NULL;
        if (slot == NULL || i + 1 >= argc) {
            fprintf(stderr, "wallet: %s %s\n", slot == NULL ? "unknown argument" : "no value for",
                    name);
            return -1;
        }
        *slot = argv[++i];
    }
    if (opt->url == NULL || opt->client_id == NULL) {
        fputs("wallet: --url and --id are required\n", stderr);
        return -1;
    }
    if (strncmp(opt->stream, "ledger:", 7) != 0) {
        fprintf(stderr, "wallet: --stream %s is not a ledger stream (ledger:NAME)\n", opt->stream);
        return -1;
    }
    if (opt->account == NULL)
        opt->account = opt->client_id;
    if (opt->outbox == NULL) {
        int len = snprintf(opt->outbox_default, sizeof opt->outbox_default, "wallet-%s.outbox",
                           opt->client_id);
        if (len < 0 || (size_t)len >= sizeof opt->outbox_default) {
            fputs("wallet: --id is too long\n", stderr);
            return -1;
        }
        opt->outbox = opt->outbox_default;
    }
    return 0;
}

/* Open the client and follow the stream: 0, or an exit status. */
static int open_client(wallet *w)
{
    const options *opt = w->options;
    arb_client_config config = {
        .url = opt->url,
        .client_id = opt->client_id,
        .role = ARB_ROLE_USER,
        .outbox_path = opt->outbox,
        .callbacks = {.view_changed = on_view_changed,
                      .outcome = on_outcome,
                      .connection = on_connection,
                      .events = on_events,
                      .error = on_error,
                      .user = w},
    };
    int rc = arb_client_open(&config, &w->client);
    if (rc != 0) {
        fprintf(stderr, "wallet: cannot open the client: %s (%s)\n", arb_err_name(rc),
                rc == ARB_EINVALID_ARGUMENT ? "check --url and --id" : arb_err_message(rc));
        return rc == ARB_EINVALID_ARGUMENT ? EXIT_USAGE : EXIT_FAILED;
    }
    rc = arb_client_subscribe(w->client, opt->stream);
    if (rc != 0) {
        fprintf(stderr, "wallet: cannot follow %s: %s (a ledger stream is ledger:NAME)\n",
                opt->stream, arb_err_name(rc));
        arb_client_destroy(w->client);
        w->client = NULL;
        return rc == ARB_EINVALID_ARGUMENT || rc == ARB_EUNKNOWN_KIND ? EXIT_USAGE : EXIT_FAILED;
    }
    return 0;
}

/* The loop. A turn: take input and run its commands, print the status if
 * it changed (so a command's effect shows before the client is serviced),
 * then service the client; what that changed prints in the next turn, at
 * most LOOP_POLL_MS later. After the end of input, the turns go on until the
 * outbox drains or DRAIN_MS passed. */
static void run(wallet *w)
{
    int64_t drain_deadline_ms = -1;
    while (!stop_requested) {
        if (!w->input_closed) {
            read_input(w);
        } else {
            if (drain_deadline_ms < 0) {
                drain_deadline_ms = monotonic_ms() + DRAIN_MS;
                say("input closed, pending %zu", arb_client_pending_count(w->client));
            }
            if (arb_client_pending_count(w->client) == 0 || !w->want_online ||
                monotonic_ms() >= drain_deadline_ms)
                break;
        }
        if (w->dirty)
            say_status(w);
        arb_client_service(w->client, w->input_closed ? LOOP_POLL_MS : 0);
    }
    if (w->dirty)
        say_status(w);
}

int main(int argc, char **argv)
{
    options opt;
    int rc = parse_options(argc, argv, &opt);
    if (rc != 0) {
        usage(rc > 0 ? stdout : stderr);
        return rc > 0 ? 0 : EXIT_USAGE;
    }
    /* Lines reach a pipe as they are printed. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct sigaction action = {.sa_handler = on_signal}; /* no SA_RESTART: poll returns */
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);

    wallet w = {.options = &opt, .want_online = true, .state = ARB_CLIENT_OFFLINE};
    rc = open_client(&w);
    if (rc == EXIT_USAGE)
        usage(stderr);
    if (rc != 0)
        return rc;
    w.dirty = true;
    run(&w);
    say("exit, pending %zu", arb_client_pending_count(w.client));
    arb_client_destroy(w.client);
    return 0;
}
