#!/usr/bin/env bash
# Interoperability checks: real SMTP clients (swaks, Python smtplib, Postfix's smtp-source)
# talk to the release binary of Postern, and every check verifies what ARRIVED upstream.
#
#   bash scripts/interop.sh            # CI runs this after `cargo test` (as root, no stdin)
#
# Environment:
#   POSTERN_BIN=path   use this binary instead of running `cargo build --release`
#   INTEROP_KEEP=1     keep the temporary directory (configs, logs, captured mail)
#   INTEROP_N=200      messages for the smtp-source → Postern → smtp-sink checks
#
# Two Postern instances run on free loopback ports in a temporary directory:
#   A  plain (AUTH allowed on loopback), STARTTLS and implicit-TLS submission listeners,
#      and an inbound listener for a helpdesk mailbox whose webhook is a Python HTTP server;
#      upstream = a byte-exact capture server (Python, below) that stores every message
#      as received after dot-unstuffing, plus its envelope;
#   B  a trusted-network listener (smtp-source cannot AUTH); upstream = Postfix's smtp-sink,
#      or (check f3) a Postfix instance of the script's own, whose smtpd offers CHUNKING,
#      relaying to that smtp-sink.
# Last, schemathesis (PyPI) checks instance A's OpenAPI document against its answers.
# The last line is `N passed, M failed`; the exit status is non-zero if anything failed.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N_SOURCE=${INTEROP_N:-200}
STARTED=$(date +%s)

say() { printf '%s\n' "$*"; }
die() { # a setup failure: after the checks started it counts as one more failed check
    say "interop: $*" >&2
    [ -n "${PASS+set}" ] && say "$PASS passed, $((FAIL + 1)) failed"
    exit 1
}

# ---------------------------------------------------------------- prerequisites
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        die "need root (or sudo) to run: $*"
    fi
}

install_missing() {
    local need=()
    command -v swaks >/dev/null || need+=(swaks)
    # swaks needs these for -tls / -tlsc; Debian only recommends them.
    perl -MNet::SSLeay -e1 2>/dev/null || need+=(libnet-ssleay-perl)
    perl -MIO::Socket::SSL -e1 2>/dev/null || need+=(libio-socket-ssl-perl)
    perl -MAuthen::SASL -e1 2>/dev/null || need+=(libauthen-sasl-perl)
    { command -v smtp-sink && command -v smtp-source; } >/dev/null 2>&1 \
        || [ -x /usr/sbin/smtp-sink ] || need+=(postfix)
    command -v curl >/dev/null || need+=(curl)
    command -v python3 >/dev/null || need+=(python3)
    python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
    [ ${#need[@]} -eq 0 ] && return 0
    say "installing: ${need[*]}"
    if printf '%s\n' "${need[@]}" | grep -qx postfix; then
        echo "postfix postfix/main_mailer_type select No configuration" | as_root debconf-set-selections
        echo "postfix postfix/mailname string localhost" | as_root debconf-set-selections
    fi
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
}

install_missing
PATH=$PATH:/usr/sbin:/sbin
for tool in swaks smtp-sink smtp-source python3 curl; do
    command -v "$tool" >/dev/null || die "$tool is still missing"
done

if [ -n "${POSTERN_BIN:-}" ]; then
    BIN=$(readlink -f "$POSTERN_BIN")
else
    say "building: cargo build --release"
    (cd "$ROOT" && cargo build --release --quiet)
    BIN=$ROOT/target/release/postern
fi
[ -x "$BIN" ] || die "no binary at $BIN"

# ---------------------------------------------------------------- workspace and cleanup
T=$(mktemp -d "${TMPDIR:-/tmp}/postern-interop.XXXXXX")
mkdir -p "$T/checks" "$T/msgs" "$T/capture"
PIDS=()
PF=""        # the Postfix instance's directory (started by start_postfix)

cleanup() {
    local rc=$?
    set +e
    local pid
    if [ -n "$PF" ]; then
        as_root postfix -c "$PF/conf" stop >/dev/null 2>&1
        rm -rf "$PF"
    fi
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    if [ "${INTEROP_KEEP:-0}" = 1 ]; then
        say "kept $T"
    else
        rm -rf "$T"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- Python helpers
cat >"$T/helpers.py" <<'PY'
"""Helpers for scripts/interop.sh: free ports, a byte-exact capture SMTP server, message
files, arrival verification, smtplib clients, metrics."""
import base64, glob, json, os, re, smtplib, socket, socketserver, ssl, sys, threading, time
import urllib.request

def freeports(n):
    socks, ports = [], []
    for _ in range(int(n)):
        s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    print(" ".join(map(str, ports)))

# ---- capture server: stores DATA (dot-unstuffed) byte for byte, with its envelope
class Capture(socketserver.StreamRequestHandler):
    lock = threading.Lock()
    seq = 0
    outdir = "."

    def reply(self, text):
        self.wfile.write(text.encode() + b"\r\n")

    def handle(self):
        self.reply("220 capture.interop.test ESMTP capture")
        helo, mail, rcpts = None, None, []
        while True:
            line = self.rfile.readline(8192)
            if not line:
                return
            bare = not line.endswith(b"\r\n")
            cmd = line.rstrip(b"\r\n").decode("utf-8", "replace")
            verb = cmd.split(" ", 1)[0].upper()
            if bare:
                self.reply("500 5.5.2 line not ended by CRLF")
            elif verb == "EHLO":
                helo = cmd[5:]
                self.wfile.write(b"250-capture.interop.test\r\n250-PIPELINING\r\n"
                                 b"250-8BITMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n"
                                 b"250 SIZE 104857600\r\n")
            elif verb == "HELO":
                helo = cmd[5:]; self.reply("250 capture.interop.test")
            elif verb == "MAIL":
                m = re.match(r"(?i)MAIL FROM:<([^>]*)>(.*)$", cmd)
                if not m or mail is not None:
                    self.reply("503 5.5.1 bad MAIL"); continue
                mail = [m.group(1), m.group(2).strip()]; rcpts = []
                self.reply("250 2.1.0 ok")
            elif verb == "RCPT":
                m = re.match(r"(?i)RCPT TO:<([^>]*)>(.*)$", cmd)
                if not m or mail is None:
                    self.reply("503 5.5.1 bad RCPT"); continue
                rcpts.append(m.group(1)); self.reply("250 2.1.5 ok")
            elif verb == "DATA":
                if mail is None or not rcpts:
                    self.reply("503 5.5.1 no valid recipients"); continue
                self.reply("354 go ahead")
                data, bare_lf = bytearray(), False
                while True:
                    l = self.rfile.readline()
                    if not l:
                        return
                    if l == b".\r\n":
                        break
                    if not l.endswith(b"\r\n") or b"\r" in l[:-2]:
                        bare_lf = True
                    if l.startswith(b"."):
                        l = l[1:]
                    data += l
                with Capture.lock:
                    Capture.seq += 1
                    n = Capture.seq
                base = os.path.join(Capture.outdir, "%06d" % n)
                with open(base + ".eml", "wb") as f:
                    f.write(data)
                env = {"mail_from": mail[0], "mail_params": mail[1], "rcpts": rcpts,
                       "helo": helo, "bare_cr_or_lf": bare_lf}
                with open(base + ".tmp", "w") as f:
                    json.dump(env, f)
                os.rename(base + ".tmp", base + ".json")
                mail, rcpts = None, []
                self.reply("250 2.0.0 captured %d" % n)
            elif verb == "RSET":
                mail, rcpts = None, []; self.reply("250 2.0.0 ok")
            elif verb == "NOOP":
                self.reply("250 2.0.0 ok")
            elif verb == "QUIT":
                self.reply("221 2.0.0 bye"); return
            else:
                self.reply("502 5.5.1 not implemented")

def capture_server(port, outdir):
    Capture.outdir = outdir
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    socketserver.ThreadingTCPServer.daemon_threads = True
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", int(port)), Capture)
    srv.serve_forever()

# ---- messages
def message(ident, kind, body_lines=None):
    head = ("From: alice@example.com\r\nTo: bob@example.net\r\n"
            "Subject: interop %s\r\nDate: Sun, 22 Nov 2026 10:00:00 +0000\r\n"
            "Message-ID: <%s@interop.test>\r\nX-Interop-Id: %s\r\n" % (kind, ident, ident))
    if body_lines is None:
        body_lines = ["Hello from the %s check." % kind, ".a line that starts with a dot",
                      "..and one with two", "", "last line"]
    return head.encode(), ("\r\n".join(body_lines) + "\r\n").encode()

def make_msg(ident, kind, prefix, size="0"):
    """Writes PREFIX.eml (the message as it must arrive, after our Received field) and
    PREFIX.wire (dot-stuffed, ending CRLF.CRLF, for swaks --no-data-fixup)."""
    lines = None
    if int(size):
        lines = ["%05d %s" % (i, "abcdefghijklmnopqrstuvwxyz0123456789" * 2)
                 for i in range(int(size) // 80)]
        lines[len(lines) // 2] = "." + lines[len(lines) // 2]
    head, body = message(ident, kind, lines)
    msg = head + b"\r\n" + body
    open(prefix + ".eml", "wb").write(msg)
    wire = re.sub(rb"(?m)^\.", b"..", msg) + b".\r\n"
    open(prefix + ".wire", "wb").write(wire)

# ---- arrival verification
RECEIVED = re.compile(rb"Received: from (\S+) \(\[127\.0\.0\.1\]\)\r\n\tby (\S+) \(Postern\) "
                      rb"with (\w+) id (\w+);\r\n\t([^\r\n]+)\r\n")

def find_arrivals(capdir, ident):
    marker = b"\r\nX-Interop-Id: " + ident.encode() + b"\r\n"
    found = []
    for j in sorted(glob.glob(os.path.join(capdir, "*.json"))):
        eml = open(j[:-5] + ".eml", "rb").read()
        if marker in eml.split(b"\r\n\r\n", 1)[0] + b"\r\n":
            found.append((j, eml))
    return found

def verify(capdir, ident, expected_file, proto, mail_from, rcpt, hostname, want_param=""):
    timeout = 30
    expected = open(expected_file, "rb").read()
    deadline = time.time() + float(timeout)
    found = []
    while time.time() < deadline:
        found = find_arrivals(capdir, ident)
        if found:
            break
        time.sleep(0.1)
    if not found:
        sys.exit("FAIL: message %s did not arrive upstream within %ss" % (ident, timeout))
    time.sleep(0.5)  # a duplicate delivery would show up now
    found = find_arrivals(capdir, ident)
    if len(found) != 1:
        sys.exit("FAIL: message %s arrived %d times" % (ident, len(found)))
    path, got = found[0]
    env = json.load(open(path))
    errors = []
    m = RECEIVED.match(got)
    if not m:
        errors.append("first field is not Postern's Received: %r" % got[:200])
    else:
        print("arrived as %s: %s" % (os.path.basename(path), m.group(0).decode().replace("\r\n", "\\r\\n")))
        if m.group(2).decode() != hostname:
            errors.append("Received 'by %s', want %s" % (m.group(2).decode(), hostname))
        if m.group(3).decode() != proto:
            errors.append("Received 'with %s', want %s" % (m.group(3).decode(), proto))
        rest = got[m.end():]
        if rest != expected:
            eh, _, eb = expected.partition(b"\r\n\r\n")
            gh, _, gb = rest.partition(b"\r\n\r\n")
            if gb != eb:
                errors.append("body bytes differ: sent %d octets, got %d; first difference at %d"
                              % (len(eb), len(gb), next((i for i, (a, b) in enumerate(zip(eb, gb)) if a != b), min(len(eb), len(gb)))))
            for field in eh.split(b"\r\n"):
                if field.split(b":")[0].lower() in (b"subject", b"message-id", b"x-interop-id", b"to", b"date") \
                        and field not in gh.split(b"\r\n"):
                    errors.append("header %r missing or changed" % field)
            if not errors:
                print("note: header block changed beyond the Received field (body identical):")
                print("  sent: %r" % eh)
                print("  got:  %r" % gh)
        else:
            print("exact: arrived = Received field + the %d octets sent" % len(expected))
    if env["bare_cr_or_lf"]:
        errors.append("upstream saw a bare CR or LF in DATA")
    if want_param and want_param not in env["mail_params"].upper().split():
        errors.append("upstream MAIL FROM lacks %s: %r" % (want_param, env["mail_params"]))
    if env["mail_from"] != mail_from:
        errors.append("envelope sender %r, want %r" % (env["mail_from"], mail_from))
    if env["rcpts"] != [rcpt]:
        errors.append("envelope recipients %r, want [%r]" % (env["rcpts"], rcpt))
    print("envelope: MAIL FROM:<%s> %s, RCPT %s, EHLO %s" % (env["mail_from"], env["mail_params"], env["rcpts"], env["helo"]))
    if errors:
        sys.exit("FAIL: " + "; ".join(errors))

def verify_sendas(capdir, ident, mail_from, from_line, sender_line):
    """A send-as check: envelope sender and the exact From/Sender fields (SPEC §3.3)."""
    deadline = time.time() + 30
    found = []
    while time.time() < deadline and not found:
        found = find_arrivals(capdir, ident)
        time.sleep(0.1)
    if len(found) != 1:
        sys.exit("FAIL: message %s arrived %d times" % (ident, len(found)))
    path, got = found[0]
    env = json.load(open(path))
    head = got.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace").split("\r\n")
    pick = lambda name: [l for l in head if l.lower().startswith(name.lower() + ":")]
    errors = []
    if env["mail_from"] != mail_from:
        errors.append("envelope sender %r, want %r" % (env["mail_from"], mail_from))
    if pick("From") != [from_line]:
        errors.append("From fields %r, want [%r]" % (pick("From"), from_line))
    want_sender = [] if sender_line == "none" else [sender_line]
    if pick("Sender") != want_sender:
        errors.append("Sender fields %r, want %r" % (pick("Sender"), want_sender))
    for gone in ("Bcc", "Return-Path", "X-Postern-Account"):
        if pick(gone):
            errors.append("%s was not removed: %r" % (gone, pick(gone)))
    if not got.endswith(b"\r\n\r\nsend-as body line\r\n"):
        errors.append("body changed: %r" % got[-60:])
    print("envelope MAIL FROM:<%s>; %s; %s" % (env["mail_from"], pick("From"), pick("Sender")))
    if errors:
        sys.exit("FAIL: " + "; ".join(errors))

def count(capdir):
    print(len(glob.glob(os.path.join(capdir, "*.json"))))

# ---- smtplib clients
def tls_context(cafile):
    ctx = ssl.create_default_context(cafile=cafile)  # verifies chain and name "localhost"
    return ctx

def smtplib_starttls(port, user, password, cafile, ident, expected_out):
    head = ("From: alice@example.com\r\nTo: bob@example.net\r\nSubject: interop smtplib\r\n"
            "Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nMessage-ID: <%s@interop.test>\r\n"
            "X-Interop-Id: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n" % (ident, ident)).encode()
    body = ("Dots and 8-bit text:\r\n"
            ".a line starting with a dot\r\n"
            "..two dots\r\n"
            ".\r\n"
            ". \r\n"
            "Grüße aus Köln — naïve café — 日本語のテキスト — 📬\r\n"
            "trailing spaces   \r\n"
            "\ttab-indented\r\n"
            "\r\n"
            "\r\n"
            "end.\r\n").encode("utf-8")
    msg = head + b"\r\n" + body
    open(expected_out, "wb").write(msg)
    s = smtplib.SMTP("localhost", int(port), local_hostname="client.interop.test", timeout=30)
    code, _ = s.ehlo()
    assert code == 250, code
    assert s.has_extn("starttls"), "STARTTLS not offered"
    assert not s.has_extn("auth"), "AUTH offered before TLS: %r" % s.esmtp_features.get("auth")
    s.starttls(context=tls_context(cafile))
    s.ehlo()
    assert s.has_extn("auth"), "AUTH not offered after STARTTLS"
    print("after STARTTLS: cipher %s, AUTH %s" % (s.sock.cipher()[0], s.esmtp_features["auth"]))
    s.login(user, password)
    refused = s.sendmail("alice@example.com", ["bob@example.net"], msg, mail_options=["BODY=8BITMIME"])
    assert not refused, refused
    s.quit()

def smtplib_implicit_login(port, user, password, cafile, ident, expected_out):
    head, body = message(ident, "smtplib-implicit-login",
                         ["AUTH LOGIN over implicit TLS, two transactions on one session.", "x" * 990])
    msg = head + b"\r\n" + body
    open(expected_out, "wb").write(msg)
    s = smtplib.SMTP_SSL("localhost", int(port), local_hostname="client.interop.test", timeout=30,
                         context=tls_context(cafile))
    s.ehlo()
    s.user, s.password = user, password
    code, resp = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
    assert code == 235, (code, resp)
    # A refused recipient syntax first, then RSET, then the real one: the session stays usable.
    code, _ = s.mail("alice@example.com")
    assert code == 250, code
    s.rset()
    refused = s.sendmail("alice@example.com", ["bob@example.net"], msg)
    assert not refused, refused
    s.quit()

def smtplib_utf8(port, user, password, cafile, ident, expected_out):
    rcpt = "bøb@exämple.net"
    head = ("From: alice@example.com\r\nTo: Bøb <%s>\r\nSubject: Grüße — SMTPUTF8 header\r\n"
            "Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nMessage-ID: <%s@interop.test>\r\n"
            "X-Interop-Id: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n" % (rcpt, ident, ident)).encode("utf-8")
    body = "Ünïcödé everywhere: envelope, header and body.\r\n.dot\r\n".encode("utf-8")
    msg = head + b"\r\n" + body
    open(expected_out, "wb").write(msg)
    s = smtplib.SMTP("localhost", int(port), local_hostname="client.interop.test", timeout=30)
    s.starttls(context=tls_context(cafile))
    s.login(user, password)
    assert s.has_extn("smtputf8"), "SMTPUTF8 not offered"
    refused = s.sendmail("alice@example.com", [rcpt], msg, mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    assert not refused, refused
    s.quit()

def refusals(starttls_port, plain_port, user, password, cafile):
    cred = base64.b64encode(("\0%s\0%s" % (user, password)).encode()).decode()
    # 1. AUTH on the STARTTLS listener before TLS: 538 5.7.11 (RFC 4954 "encryption required").
    s = smtplib.SMTP("localhost", int(starttls_port), local_hostname="client.interop.test", timeout=30)
    s.ehlo()
    code, text = s.docmd("AUTH", "PLAIN " + cred)
    print("AUTH before STARTTLS -> %d %s" % (code, text.decode()))
    assert code == 538, "want 538, got %d" % code
    # 2. MAIL without AUTH, same plain-text session: 530.
    code, text = s.mail("alice@example.com")
    print("MAIL without AUTH (before TLS) -> %d %s" % (code, text.decode()))
    assert code == 530, "want 530, got %d" % code
    # 3. After STARTTLS, still no AUTH: 530 again; nothing may be queued.
    s.starttls(context=tls_context(cafile)); s.ehlo()
    code, text = s.mail("alice@example.com")
    print("MAIL without AUTH (after TLS) -> %d %s" % (code, text.decode()))
    assert code == 530, "want 530, got %d" % code
    # 4. Wrong password: 535, and MAIL is still refused afterwards.
    try:
        s.login(user, password + "-wrong")
        raise AssertionError("wrong password accepted")
    except smtplib.SMTPAuthenticationError as e:
        print("wrong password -> %d %s" % (e.smtp_code, e.smtp_error.decode()))
        assert e.smtp_code == 535, e.smtp_code
    code, _ = s.mail("alice@example.com")
    assert code == 530, "MAIL after failed AUTH: want 530, got %d" % code
    s.quit()
    # 5. The plain listener without AUTH: 530 as well.
    s = smtplib.SMTP("127.0.0.1", int(plain_port), local_hostname="client.interop.test", timeout=30)
    s.ehlo()
    assert s.has_extn("auth"), "plain loopback listener with allow_plaintext_auth offers no AUTH"
    code, text = s.mail("alice@example.com")
    print("MAIL without AUTH (plain listener) -> %d %s" % (code, text.decode()))
    assert code == 530, "want 530, got %d" % code
    s.quit()

def metric(url, name, label=""):
    """Sum of every sample of NAME whose labels contain LABEL (e.g. outcome="delivered")."""
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name):len(name) + 1] in (" ", "{") and label in line:
            total += float(line.rsplit(" ", 1)[1])
    print(int(total))

# ---- webhook receiver: stores each POST's body and headers as OUTDIR/N.json
def webhook_server(port, outdir):
    import http.server
    os.makedirs(outdir, exist_ok=True)
    count = [0]

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            count[0] += 1
            # Field names in lower case: HTTP/1.1 names are case-insensitive (RFC 9110
            # §5.1) and Postern's client (hyper) sends them in lower case.
            headers = {k.lower(): v for k, v in self.headers.items()}
            record = {"path": self.path, "headers": headers,
                      "body": body.decode("utf-8")}
            with open(os.path.join(outdir, "%d.json" % count[0]), "w") as f:
                json.dump(record, f)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    http.server.HTTPServer(("127.0.0.1", int(port)), Hook).serve_forever()

def verify_webhook(outdir, secret, subject):
    """One call arrived, its signature is the HMAC-SHA256 of its body, and it is about SUBJECT."""
    import hashlib, hmac
    files = sorted(glob.glob(os.path.join(outdir, "*.json")))
    assert files, "no webhook call arrived"
    record = json.load(open(files[0]))
    body = record["body"].encode("utf-8")
    want = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    got = record["headers"].get("x-postern-signature")
    assert got == want, "signature %r, want %r" % (got, want)
    payload = json.loads(body)
    assert payload["event"] == "ticket.created", payload["event"]
    assert payload["message"]["subject"] == subject, payload["message"]["subject"]
    print("webhook %s: %s, ticket %s, signature verified" % (
        record["headers"].get("x-postern-delivery"), payload["event"], payload["ticket"]["id"]))

if __name__ == "__main__":
    globals()[sys.argv[1].replace("-", "_")](*sys.argv[2:])
PY
py() { python3 "$T/helpers.py" "$@"; }

# ---------------------------------------------------------------- processes
read -r A_API A_PLAIN A_STARTTLS A_IMPLICIT A_INBOUND B_API B_TRUSTED CAPTURE SINK HOOK PF_PORT \
    <<<"$(py freeports 11)"
HOST=postern.interop.test
TOKEN=interop-admin-token-$(date +%s)-$$
USER_LOGIN=alice@example.com
USER_PASS=alice-interop-password
RELAY_LOGIN=relay@interop.test
RELAY_SECRET=interop-relay-secret-0123456789abcdefghijklmnop

python3 "$T/helpers.py" capture-server "$CAPTURE" "$T/capture" >"$T/capture.log" 2>&1 &
PIDS+=($!)
python3 "$T/helpers.py" webhook-server "$HOOK" "$T/webhook" >"$T/webhook.log" 2>&1 &
PIDS+=($!)
SINK_USER=()
[ "$(id -u)" -eq 0 ] && SINK_USER=(-u nobody)   # smtp-sink refuses to run as root without -u
smtp-sink -c "${SINK_USER[@]}" -m 1000 "127.0.0.1:$SINK" 1000 >"$T/sink.out" 2>"$T/sink.err" &
PIDS+=($!)

write_config() { # instance
    local i=$1
    mkdir -p "$T/$i"
    {
        cat <<EOF
data_dir = "$T/$i/data"
hostname = "$HOST"
shutdown_grace_secs = 2
EOF
        if [ "$i" = a ]; then
            cat <<EOF
default_upstream = "capture"

[api]
bind = "127.0.0.1:$A_API"

[tls]
cert = "$T/a/certs/postern.pem"
key = "$T/a/certs/postern.key"

[[listener]]
name = "plain"
bind = "127.0.0.1:$A_PLAIN"
tls = "none"
allow_plaintext_auth = true

[[listener]]
name = "starttls"
bind = "127.0.0.1:$A_STARTTLS"
tls = "starttls"

[[listener]]
name = "implicit"
bind = "127.0.0.1:$A_IMPLICIT"
tls = "implicit"

[[listener]]
name = "inbound"
bind = "127.0.0.1:$A_INBOUND"
purpose = "inbound"
tls = "starttls"

# No resolver here reaches the internet: the SPF/DKIM/DMARC checks have their own test
# (tests/authentication.rs, against a DNS server in the test).
[inbound]
authenticate = false

[queue]
retry_intervals_secs = [1, 2]

[upstream.capture]
kind = "smtp"
host = "127.0.0.1"
port = $CAPTURE
tls = "none"
timeout_secs = 10
EOF
        else
            cat <<EOF
default_upstream = "sink"

[api]
bind = "127.0.0.1:$B_API"

[tls]
cert = "$T/b/certs/postern.pem"
key = "$T/b/certs/postern.key"

[[listener]]
name = "trusted"
bind = "127.0.0.1:$B_TRUSTED"
tls = "none"
trusted_networks = ["127.0.0.0/8"]
trusted_principal = "$RELAY_LOGIN"

[queue]
retry_intervals_secs = [1, 2]

[upstream.sink]
kind = "smtp"
host = "127.0.0.1"
port = $SINK
tls = "none"
timeout_secs = 10

# A real peer offering PIPELINING and CHUNKING (check f3): messages go as BDAT. Idle
# connections close after a second, so that Postfix logs their command counts.
[upstream.postfix]
kind = "smtp"
host = "127.0.0.1"
port = $PF_PORT
tls = "none"
timeout_secs = 10
pool_idle_secs = 1
EOF
        fi
    } >"$T/$i/postern.toml"
}

start_postern() { # instance api_port
    local i=$1 api=$2
    (cd "$T/$i" && POSTERN_ADMIN_TOKEN=$TOKEN RUST_LOG=${RUST_LOG:-info} NO_COLOR=1 \
        exec "$BIN" serve --config "$T/$i/postern.toml") >"$T/$i/stdout.log" 2>"$T/$i/postern.log" &
    PIDS+=($!)
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$api/readyz" >/dev/null 2>&1 && return 0
        kill -0 "$!" 2>/dev/null || break
        sleep 0.1
    done
    tail -20 "$T/$i/postern.log" >&2
    die "postern instance $i did not become ready on 127.0.0.1:$api"
}

api_post() { # api_port path json
    local code
    code=$(curl -s -o "$T/api.out" -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" \
        -H 'Content-Type: application/json' -d "$3" "http://127.0.0.1:$1$2")
    [ "$code" = 201 ] || { cat "$T/api.out" >&2; die "POST $2 failed: HTTP $code"; }
}

api_user() { # api_port json
    api_post "$1" /api/v1/users "$2"
}

wait_port() { # port
    for _ in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    die "nothing listens on 127.0.0.1:$1"
}

# A Postfix instance of the script's own (config, queue, log under $PF; /etc/postfix is
# only read): its smtpd on 127.0.0.1:$PF_PORT relays everything to the smtp-sink.
start_postfix() {
    PF=$(mktemp -d /var/tmp/postern-interop-postfix.XXXXXX)
    chmod 755 "$PF"   # the postfix user must reach its queue and data directories
    mkdir -p "$PF/conf" "$PF/queue" "$PF/data"
    cp /etc/postfix/master.cf "$PF/conf/master.cf"
    : >"$PF/conf/main.cf"
    postconf -c "$PF/conf" -e "compatibility_level = 3.6" "queue_directory = $PF/queue" \
        "data_directory = $PF/data" "maillog_file = $PF/maillog" "maillog_file_prefixes = $PF" \
        "myhostname = interop-postfix.localdomain" "inet_interfaces = loopback-only" \
        "inet_protocols = ipv4" "mynetworks = 127.0.0.0/8" "mydestination =" \
        "local_recipient_maps =" "alias_maps =" "alias_database =" \
        "relayhost = [127.0.0.1]:$SINK" "smtp_dns_support_level = disabled" \
        "smtpd_peername_lookup = no" "biff = no"
    postconf -c "$PF/conf" -F '*/*/chroot = n'
    postconf -c "$PF/conf" -MX smtp/inet
    postconf -c "$PF/conf" -M "127.0.0.1:$PF_PORT/inet=127.0.0.1:$PF_PORT inet n - n - - smtpd"
    as_root /etc/postfix/post-install config_directory="$PF/conf" meta_directory=/etc/postfix \
        create-missing >/dev/null
    as_root chown postfix "$PF/data"
    as_root postfix -c "$PF/conf" start >/dev/null 2>&1 \
        || die "postfix did not start: $(tail -5 "$PF/maillog" 2>/dev/null)"
}

write_config a
write_config b
start_postfix
wait_port "$CAPTURE"
wait_port "$SINK"
wait_port "$HOOK"
wait_port "$PF_PORT"

# ---------------------------------------------------------------- checks

run() { # name function args...
    local name=$1; shift
    local log="$T/checks/$name.log" rc=0 t0=$SECONDS
    ( set -euo pipefail; "$@" ) >"$log" 2>&1 &
    wait $! || rc=$?
    if [ "$rc" -eq 0 ]; then
        PASS=$((PASS + 1))
        printf 'ok    %-44s (%ss)\n' "$name" $((SECONDS - t0))
    else
        FAIL=$((FAIL + 1))
        FAILED+=("$name")
        printf 'FAIL  %-44s (exit %s)\n' "$name" "$rc"
        sed 's/^/      | /' "$log" | tail -40
    fi
}

captured() { py count "$T/capture"; }

# The OpenAPI document against the live server: schemathesis (from PyPI, in a venv)
# generates requests from the document and fails on any 5xx or any response that does not
# match the schema the document gives for its status. It runs in the workspace, where it
# leaves its `.schemathesis` cache.
check_openapi() {
    python3 -m venv "$T/st-venv"
    "$T/st-venv/bin/pip" install -q --disable-pip-version-check schemathesis
    curl -sf "http://127.0.0.1:$A_API/api/v1/openapi.json" | python3 -c \
        'import json,sys; d=json.load(sys.stdin); assert d["openapi"].startswith("3.1"), d["openapi"]; assert len(d["paths"]) >= 30'
    (cd "$T" && "$T/st-venv/bin/schemathesis" run "http://127.0.0.1:$A_API/api/v1/openapi.json" \
        -H "Authorization: Bearer $TOKEN" --checks not_a_server_error,response_schema_conformance \
        --max-examples 30 --generation-deterministic --phases examples,coverage,fuzzing)
}

sendas_message() { # id from-header [X-Postern-Account value] -> writes $T/msgs/ID.wire
    local hint=""
    [ -n "${3:-}" ] && hint="X-Postern-Account: $3\r\n"
    printf "Return-Path: <bounce@evil.example>\r\nFrom: %s\r\nTo: bob@example.net\r\nBcc: hidden@example.org\r\n${hint}X-Interop-Id: %s\r\nSubject: send-as %s\r\n\r\nsend-as body line\r\n.\r\n" \
        "$2" "$1" "$1" >"$T/msgs/$1.wire"
}

sendas_swaks() { # id envelope-from
    timeout 60 swaks --server 127.0.0.1 --port "$A_PLAIN" --helo client.interop.test \
        --from "$2" --to bob@example.net \
        --auth PLAIN --auth-user "$USER_LOGIN" --auth-password "$USER_PASS" \
        --data "@$T/msgs/$1.wire" --no-data-fixup >"$T/msgs/$1.swaks" 2>&1
}

check_send_on_behalf() {
    api_post "$A_API" /api/v1/accounts '{"name":"support","address":"support@example.com","display_name":"Support Team","upstream":"capture","scope":{"kind":"all_staff"},"default_send_mode":"send_on_behalf"}'
    sendas_message sendas-obo 'Alice <support@example.com>' support
    sendas_swaks sendas-obo support@example.com || { cat "$T/msgs/sendas-obo.swaks"; return 1; }
    py verify-sendas "$T/capture" sendas-obo support@example.com \
        'From: Support Team <support@example.com>' 'Sender: <alice@example.com>'
}

check_send_as() {
    api_post "$A_API" /api/v1/accounts '{"name":"sales","address":"sales@example.com","upstream":"capture","scope":{"kind":"everyone"},"default_send_mode":"send_as"}'
    sendas_message sendas-as '"Sales, EMEA" <sales@example.com>'
    sendas_swaks sendas-as alice@example.com || { cat "$T/msgs/sendas-as.swaks"; return 1; }
    py verify-sendas "$T/capture" sendas-as sales@example.com \
        'From: "Sales, EMEA" <sales@example.com>' none
}

check_send_as_refused() {
    api_post "$A_API" /api/v1/accounts '{"name":"robots","address":"robot@example.com","upstream":"capture","scope":{"kind":"system"},"default_send_mode":"send_as"}'
    sendas_message sendas-refused 'robot@example.com'
    if sendas_swaks sendas-refused robot@example.com; then
        cat "$T/msgs/sendas-refused.swaks"; echo "a staff user sent as a system account"; return 1
    fi
    grep -q '^<\*\* *550 5.7.1 <alice@example.com> may not send as <robot@example.com> (scope system does not admit a staff principal)' \
        "$T/msgs/sendas-refused.swaks" || { cat "$T/msgs/sendas-refused.swaks"; return 1; }
}

check_config_ok() {
    "$BIN" check-config --config "$T/a/postern.toml"
    "$BIN" check-config --config "$T/b/postern.toml"
}

swaks_send() { # id kind port size swaks-options...
    local id=$1 kind=$2 port=$3 size=$4; shift 4
    py make-msg "$id" "$kind" "$T/msgs/$id" "$size"
    timeout 60 swaks --server 127.0.0.1 --port "$port" --helo client.interop.test \
        --from alice@example.com --to bob@example.net \
        --auth PLAIN --auth-user "$USER_LOGIN" --auth-password "$USER_PASS" \
        --data "@$T/msgs/$id.wire" --no-data-fixup "$@" >"$T/msgs/$id.swaks" 2>&1 \
        || { cat "$T/msgs/$id.swaks"; echo "swaks exited $?"; return 1; }
}

check_swaks_starttls() {
    swaks_send swaks-starttls swaks-starttls "$A_STARTTLS" 0 -tls
    grep -q '^ -> STARTTLS' "$T/msgs/swaks-starttls.swaks"
    grep -q '^<~  235' "$T/msgs/swaks-starttls.swaks"   # AUTH succeeded inside TLS
    py verify "$T/capture" swaks-starttls "$T/msgs/swaks-starttls.eml" ESMTPSA \
        alice@example.com bob@example.net "$HOST"
}

check_swaks_pipeline() {
    swaks_send swaks-pipeline swaks-pipeline "$A_PLAIN" 65536 --pipeline
    local out=$T/msgs/swaks-pipeline.swaks data_sent first_reply
    grep -q '^<-  250-PIPELINING' "$out"
    grep -q '^<-  235' "$out"
    # Pipelined: MAIL, RCPT and DATA went out before the reply to MAIL came back.
    data_sent=$(grep -n '^ -> DATA$' "$out" | head -1 | cut -d: -f1)
    first_reply=$(grep -n '^<-  250 2.1.0' "$out" | head -1 | cut -d: -f1)
    echo "DATA sent at line $data_sent, reply to MAIL read at line $first_reply"
    [ -n "$data_sent" ] && [ -n "$first_reply" ] && [ "$data_sent" -lt "$first_reply" ]
    py verify "$T/capture" swaks-pipeline "$T/msgs/swaks-pipeline.eml" ESMTPA \
        alice@example.com bob@example.net "$HOST"
}

check_swaks_implicit() {
    swaks_send swaks-implicit swaks-implicit "$A_IMPLICIT" 204800 -tlsc
    grep -q '^<~  235' "$T/msgs/swaks-implicit.swaks"
    py verify "$T/capture" swaks-implicit "$T/msgs/swaks-implicit.eml" ESMTPSA \
        alice@example.com bob@example.net "$HOST"
}

check_smtplib_starttls() {
    py smtplib-starttls "$A_STARTTLS" "$USER_LOGIN" "$USER_PASS" "$T/a/certs/postern.pem" \
        smtplib-dots-8bit "$T/msgs/smtplib-dots-8bit.eml"
    py verify "$T/capture" smtplib-dots-8bit "$T/msgs/smtplib-dots-8bit.eml" ESMTPSA \
        alice@example.com bob@example.net "$HOST"
}

check_smtplib_implicit() {
    py smtplib-implicit-login "$A_IMPLICIT" "$USER_LOGIN" "$USER_PASS" "$T/a/certs/postern.pem" \
        smtplib-implicit "$T/msgs/smtplib-implicit.eml"
    py verify "$T/capture" smtplib-implicit "$T/msgs/smtplib-implicit.eml" ESMTPSA \
        alice@example.com bob@example.net "$HOST"
}

check_smtplib_utf8() {
    py smtplib-utf8 "$A_STARTTLS" "$USER_LOGIN" "$USER_PASS" "$T/a/certs/postern.pem" \
        smtplib-utf8 "$T/msgs/smtplib-utf8.eml"
    py verify "$T/capture" smtplib-utf8 "$T/msgs/smtplib-utf8.eml" UTF8SMTPSA \
        alice@example.com 'bøb@exämple.net' "$HOST" SMTPUTF8
}

check_refusals() {
    local before after
    before=$(captured)
    py refusals "$A_STARTTLS" "$A_PLAIN" "$USER_LOGIN" "$USER_PASS" "$T/a/certs/postern.pem"
    # swaks, too: AUTH required but never offered before TLS -> swaks gives up, nothing sent.
    local rc=0
    timeout 60 swaks --server 127.0.0.1 --port "$A_STARTTLS" --from alice@example.com \
        --to bob@example.net >"$T/checks/swaks-noauth.out" 2>&1 || rc=$?
    grep -E '^<\*\* +530' "$T/checks/swaks-noauth.out"
    [ "$rc" -ne 0 ] || { echo "swaks without AUTH succeeded"; return 1; }
    sleep 1
    after=$(captured)
    [ "$before" = "$after" ] || { echo "a refused session delivered mail ($before -> $after)"; return 1; }
}

check_capture_count() {
    local got want=$1 acc del
    got=$(captured)
    acc=$(py metric "http://127.0.0.1:$A_API/metrics" postern_messages_accepted_total)
    del=$(py metric "http://127.0.0.1:$A_API/metrics" postern_deliveries_total 'outcome="delivered"')
    echo "captured $got, accepted $acc, delivered $del, want $want"
    [ "$got" = "$want" ] && [ "$acc" = "$want" ] && [ "$del" = "$want" ]
}

sink_count() { tr '\r' '\n' <"$T/sink.out" | sed -n 's/.*mesg=\([0-9]*\).*/\1/p' | tail -1; }

check_smtp_source() { # label extra-smtp-source-options...
    local before want got=0 acc del
    before=$(sink_count); before=${before:-0}
    want=$((before + N_SOURCE))
    timeout 120 smtp-source -s 10 -m "$N_SOURCE" -l 4096 -c -f "$RELAY_LOGIN" -t sink@example.net \
        "$@" "127.0.0.1:$B_TRUSTED" >"$T/checks/smtp-source.out" 2>&1 \
        || { tail -5 "$T/checks/smtp-source.out"; echo "smtp-source failed"; return 1; }
    for _ in $(seq 600); do
        got=$(sink_count); got=${got:-0}
        [ "$got" -ge "$want" ] && break
        sleep 0.1
    done
    sleep 0.5
    got=$(sink_count)
    acc=$(py metric "http://127.0.0.1:$B_API/metrics" postern_messages_accepted_total)
    del=$(py metric "http://127.0.0.1:$B_API/metrics" postern_deliveries_total 'outcome="delivered"')
    echo "smtp-sink counted $((got - before)) new messages (total $got), Postern accepted $acc, delivered $del; sent $N_SOURCE"
    [ "$got" -eq "$want" ] && [ "$acc" -eq "$((want))" ] && [ "$del" -eq "$want" ]
}

# Postern to a real CHUNKING peer: the relay account goes through Postfix for one
# smtp-source run. Every message reaches smtp-sink, and Postfix's smtpd, whose
# `disconnect from` log line counts each command of a session, took them all by BDAT and
# none by DATA.
check_postfix_bdat() {
    local before want got=0 bdat=0
    [ "$(api_call PATCH "$B_API" "/api/v1/accounts/$RELAY_ACCOUNT" "" '{"upstream":"postfix"}')" = 200 ] \
        || { cat "$T/api.out"; return 1; }
    before=$(sink_count); before=${before:-0}
    want=$((before + N_SOURCE))
    timeout 120 smtp-source -s 10 -m "$N_SOURCE" -l 4096 -d -f "$RELAY_LOGIN" -t sink@example.net \
        "127.0.0.1:$B_TRUSTED" >"$T/checks/smtp-source-postfix.out" 2>&1 \
        || { tail -5 "$T/checks/smtp-source-postfix.out"; echo "smtp-source failed"; return 1; }
    for _ in $(seq 300); do
        got=$(sink_count); got=${got:-0}
        bdat=$(sed -n 's/.*disconnect from .* bdat=\([0-9]*\).*/\1/p' "$PF/maillog" | awk '{n += $1} END {print n + 0}')
        [ "$got" -ge "$want" ] && [ "$bdat" -ge "$N_SOURCE" ] && break
        sleep 0.1
    done
    # Back to smtp-sink directly, once everything went through Postfix.
    [ "$(api_call PATCH "$B_API" "/api/v1/accounts/$RELAY_ACCOUNT" "" '{"upstream":"sink"}')" = 200 ] \
        || { cat "$T/api.out"; return 1; }
    grep 'disconnect from' "$PF/maillog" | sed 's/.*disconnect from [^ ]* //' | sort | uniq -c
    echo "smtp-sink counted $((got - before)) new messages; Postfix smtpd took $bdat by BDAT"
    if grep 'disconnect from' "$PF/maillog" | grep -q ' data='; then
        echo "Postfix smtpd saw DATA"
        return 1
    fi
    [ "$got" -eq "$want" ] && [ "$bdat" -eq "$N_SOURCE" ]
}

say "postern: $BIN ($("$BIN" --version 2>/dev/null || echo '?'))"
say "workspace: $T"
CHECKS_START=$SECONDS
PASS=0
FAIL=0
FAILED=()
run "check-config" check_config_ok

# Inbound: swaks delivers to a helpdesk mailbox; a ticket appears in the API and a signed
# webhook call reaches a Python HTTP server; any other recipient is refused in the dialogue.
HOOK_SECRET=interop-webhook-secret-0123456789
check_inbound_ticket() {
    api_post "$A_API" /api/v1/webhooks "{\"name\":\"crm\",\"url\":\"http://127.0.0.1:$HOOK/events\",\"secret\":\"$HOOK_SECRET\"}"
    local hook
    hook=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$T/api.out")
    api_post "$A_API" /api/v1/accounts "{\"name\":\"helpdesk\",\"address\":\"help@example.com\",\"upstream\":\"capture\",\"inbound\":{\"auto_create_requesters\":true,\"webhooks\":[$hook]}}"
    local out=$T/msgs/inbound.swaks
    timeout 60 swaks --server 127.0.0.1 --port "$A_INBOUND" --helo mx.customer.example -tls \
        --from carol@customer.example --to help@example.com \
        --header 'Subject: interop ticket' --body 'The printer is on fire.' >"$out" 2>&1 \
        || { cat "$out"; return 1; }
    grep -q '^<~  250 2.0.0 queued as' "$out" || { cat "$out"; return 1; }
    if timeout 60 swaks --server 127.0.0.1 --port "$A_INBOUND" --from carol@customer.example \
        --to someone@elsewhere.example >"$T/msgs/inbound-relay.swaks" 2>&1; then
        cat "$T/msgs/inbound-relay.swaks"; echo "relayed to a non-helpdesk recipient"; return 1
    fi
    grep -q '^<\*\* *550 5.7.1 relaying denied' "$T/msgs/inbound-relay.swaks" \
        || { cat "$T/msgs/inbound-relay.swaks"; return 1; }
    for _ in $(seq 100); do
        curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$A_API/api/v1/tickets" >"$T/tickets.json"
        if python3 - "$T/tickets.json" <<'PY'
import json, sys
tickets = json.load(open(sys.argv[1]))
sys.exit(0 if any(t["subject"] == "interop ticket" and t["origin"] == "email" for t in tickets) else 1)
PY
        then
            cat "$T/tickets.json"; echo; break
        fi
        sleep 0.1
    done
    grep -q '"interop ticket"' "$T/tickets.json" || { cat "$T/tickets.json"; echo "no ticket appeared"; return 1; }
    for _ in $(seq 100); do
        ls "$T/webhook/"*.json >/dev/null 2>&1 && break
        sleep 0.1
    done
    py verify-webhook "$T/webhook" "$HOOK_SECRET" "interop ticket"
}

api_call() { # method api_port path json → body in $T/api.out, status printed
    curl -s -o "$T/api.out" -w '%{http_code}' -X "$1" -H "Authorization: Bearer ${4:-$TOKEN}" \
        -H 'Content-Type: application/json' ${5:+-d "$5"} "http://127.0.0.1:$2$3"
}

json_field() { # file python-expression-on-j
    python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# A leaver (SPEC §8): a complete-type staff user sends two messages through its personal
# account, is deactivated and backed up; the mbox download is read by Python's `mailbox`
# and holds exactly the messages the API lists.
check_leaver_backup() {
    local leo=leo@example.com pass=leo-interop-password id token job
    api_post "$A_API" /api/v1/users "{\"login\":\"$leo\",\"email\":\"$leo\",\"kind\":\"staff\",\"password\":\"$pass\"}"
    id=$(json_field "$T/api.out" 'j["id"]')
    api_post "$A_API" /api/v1/accounts "{\"name\":\"leo\",\"address\":\"$leo\",\"owner\":$id,\"upstream\":\"capture\"}"
    api_post "$A_API" "/api/v1/users/$id/tokens" '{}'
    token=$(json_field "$T/api.out" 'j["token"]')
    [ "$(api_call PUT "$A_API" /api/v1/me/mail-config "$token" "{\"account_type\":\"complete\",\"mailbox\":\"$leo\"}")" = 200 ] || { cat "$T/api.out"; return 1; }
    [ "$(api_call PATCH "$A_API" /api/v1/settings "" '{"org_domains":["example.com"]}')" = 200 ] || { cat "$T/api.out"; return 1; }
    for n in 1 2; do
        timeout 60 swaks --server 127.0.0.1 --port "$A_PLAIN" --helo leo.interop.test \
            --auth PLAIN --auth-user "$leo" --auth-password "$pass" \
            --from "$leo" --to "customer$n@example.net" --header "Subject: handover $n" \
            --body "From the desk of Leo, message $n." >"$T/msgs/leaver-$n.swaks" 2>&1 \
            || { cat "$T/msgs/leaver-$n.swaks"; return 1; }
    done
    [ "$(api_call PATCH "$A_API" "/api/v1/users/$id" "" '{"status":"deactivated"}')" = 200 ] || { cat "$T/api.out"; return 1; }
    [ "$(api_call POST "$A_API" "/api/v1/users/$id/backup" "" "{\"grant_to\":[\"$USER_LOGIN\"]}")" = 202 ] || { cat "$T/api.out"; return 1; }
    job=$(json_field "$T/api.out" 'j["id"]')
    for _ in $(seq 200); do
        api_call GET "$A_API" "/api/v1/backups/$job" >/dev/null
        grep -q '"status":"completed"' "$T/api.out" && break
        grep -q '"status":"failed"' "$T/api.out" && break
        sleep 0.1
    done
    cat "$T/api.out"; echo
    grep -q '"status":"completed"' "$T/api.out" || return 1
    [ "$(api_call GET "$A_API" "/api/v1/backups/$job/messages")" = 200 ] || { cat "$T/api.out"; return 1; }
    cp "$T/api.out" "$T/backup-messages.json"
    [ "$(curl -s -o "$T/leo.mbox" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
        "http://127.0.0.1:$A_API/api/v1/backups/$job/mbox")" = 200 ] || return 1
    python3 - "$T/leo.mbox" "$T/backup-messages.json" <<'PY'
import json, mailbox, sys
box = mailbox.mbox(sys.argv[1])
listed = json.load(open(sys.argv[2]))
read = sorted((m["Subject"], m["Message-ID"].strip("<>")) for m in box)
want = sorted((m["subject"], m["message_id"]) for m in listed)
print("mbox:", read)
print("api: ", want)
assert len(read) == 2 and read == want, "the mbox does not hold the listed messages"
assert [s for s, _ in read] == ["handover 1", "handover 2"]
for m in box:
    assert "From the desk of Leo" in m.get_payload(), m.get_payload()
PY
}

# DKIM (SPEC §5): keys made with `postern admin dkim` (RSA-2048 and Ed25519, both active
# for one domain); a message sent as that domain's shared account arrives with two
# signatures, and dkimpy (PyPI, with PyNaCl for Ed25519), an implementation independent
# of mail-auth, verifies both against the records the API says to publish.
check_dkim_dkimpy() {
    local admin=(env POSTERN_API="http://127.0.0.1:$A_API" POSTERN_TOKEN="$TOKEN" "$BIN" admin)
    "${admin[@]}" dkim create dkim.example --selector interop-rsa --activate
    "${admin[@]}" dkim create dkim.example --algorithm ed25519 --selector interop-ed --activate
    "${admin[@]}" --json dkim list >"$T/dkim-keys.json"
    "${admin[@]}" dkim record dkim.example interop-rsa
    api_post "$A_API" /api/v1/accounts '{"name":"news","address":"news@dkim.example","display_name":"News Desk","upstream":"capture","scope":{"kind":"everyone"},"default_send_mode":"send_as"}'
    sendas_message dkim-signed 'Alice <news@dkim.example>'
    sendas_swaks dkim-signed alice@example.com || { cat "$T/msgs/dkim-signed.swaks"; return 1; }
    python3 -m venv "$T/dkim-venv"
    "$T/dkim-venv/bin/pip" install -q --disable-pip-version-check dkimpy pynacl
    "$T/dkim-venv/bin/python" - "$T/capture" "$T/dkim-keys.json" <<'PY'
import glob, json, os, sys, time
import dkim
capdir, keys = sys.argv[1], json.load(open(sys.argv[2]))
records = {k["dns"]["name"] + ".": k["dns"]["value"].encode() for k in keys}
def dnsfunc(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    return records.get(name if name.endswith(".") else name + ".")
marker = b"\r\nX-Interop-Id: dkim-signed\r\n"
message, deadline = None, time.time() + 30
while message is None and time.time() < deadline:
    for j in glob.glob(os.path.join(capdir, "*.eml")):
        eml = open(j, "rb").read()
        if marker in eml.split(b"\r\n\r\n", 1)[0] + b"\r\n":
            message = eml
    time.sleep(0.1)
assert message is not None, "the signed message never arrived"
head = message.split(b"\r\n\r\n", 1)[0]
assert b"\r\nFrom: News Desk <news@dkim.example>\r\n" in b"\r\n" + head + b"\r\n", head
d = dkim.DKIM(message)
count = head.count(b"DKIM-Signature:")
assert count == 2, "%d signatures" % count
for idx in range(count):
    ok = d.verify(idx=idx, dnsfunc=dnsfunc)
    print("signature %d: %s (%s)" % (idx, "pass" if ok else "FAIL", getattr(d, "signature_fields", {}).get(b"a")))
    assert ok, "dkimpy rejects signature %d" % idx
tampered = message.replace(b"Subject: send-as dkim-signed", b"Subject: changed")
assert not dkim.DKIM(tampered).verify(idx=0, dnsfunc=dnsfunc), "a changed Subject still verifies"
PY
}

start_postern a "$A_API"
start_postern b "$B_API"
api_user "$A_API" "{\"login\":\"$USER_LOGIN\",\"email\":\"$USER_LOGIN\",\"kind\":\"staff\",\"password\":\"$USER_PASS\"}"
api_user "$B_API" "{\"login\":\"$RELAY_LOGIN\",\"email\":\"$RELAY_LOGIN\",\"kind\":\"system\",\"password\":\"$RELAY_SECRET\"}"
# The system principal sends as its own address through a system-scope account (SPEC §2).
api_post "$B_API" /api/v1/accounts "{\"name\":\"relay\",\"address\":\"$RELAY_LOGIN\",\"upstream\":\"sink\",\"scope\":{\"kind\":\"system\"},\"default_send_mode\":\"send_as\"}"
RELAY_ACCOUNT=$(json_field "$T/api.out" 'j["id"]')
[ "$(stat -c %a "$T/a/certs/postern.key")" = 600 ] || die "generated key is not mode 0600"

run "a. swaks STARTTLS + AUTH PLAIN" check_swaks_starttls
run "b. swaks --pipeline, plain + AUTH, 64 KiB" check_swaks_pipeline
run "c. swaks implicit TLS (-tlsc), 200 KiB" check_swaks_implicit
run "d. smtplib STARTTLS, dots + 8-bit body" check_smtplib_starttls
run "d2. smtplib implicit TLS + AUTH LOGIN" check_smtplib_implicit
run "d3. smtplib SMTPUTF8 recipient + UTF-8 header" check_smtplib_utf8
run "e. refusals: 538 before TLS, 530, 535" check_refusals
run "h. send_on_behalf: From, Sender, envelope" check_send_on_behalf
run "h2. send_as through a shared account" check_send_as
run "h3. no right: refused at MAIL FROM, rule named" check_send_as_refused
run "f. smtp-source x$N_SOURCE -> smtp-sink" check_smtp_source
run "f2. smtp-source -d x$N_SOURCE -> smtp-sink" check_smtp_source -d
run "f3. BDAT to Postfix smtpd x$N_SOURCE -> smtp-sink" check_postfix_bdat
run "g. capture count = accepted = delivered" check_capture_count 8
run "j. swaks -> inbound -> ticket + signed webhook" check_inbound_ticket
run "k. leaver backup -> mbox read by Python mailbox" check_leaver_backup
run "l. DKIM RSA + Ed25519 verified by dkimpy" check_dkim_dkimpy
# Last: it creates and changes users, roles and accounts at random.
run "i. OpenAPI document vs server (schemathesis)" check_openapi

say "($((SECONDS - CHECKS_START)) s of checks, $(($(date +%s) - STARTED)) s in all with the build)"
if [ "$FAIL" -ne 0 ]; then
    say "failed: ${FAILED[*]}"
    say "--- postern a log (tail)"; tail -15 "$T/a/postern.log" || true
    say "--- postern b log (tail)"; tail -15 "$T/b/postern.log" || true
fi
say "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
