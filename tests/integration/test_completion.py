"""Shell completion for ringq (tools/ringq.bash, tools/_ringq,
tools/ringq.fish), driven in the real shells against a real ringqd.

bash: bash-completion and ringq.bash sourced into `bash -c`, COMP_WORDS,
COMP_CWORD, COMP_LINE and COMP_POINT set as readline sets them, the
function `complete -p ringq` names called, COMPREPLY read. zsh: an
interactive `zsh -f` on a pty with compinit and tools/ in fpath, the line
typed and TAB sent; a compadd wrapper writes every match the completion
system adds to a file. fish: `complete -C LINE`, tools/ first in
fish_complete_path so fish loads ringq.fish itself.
"""
import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from harness import RINGQ, SLOW, DaemonTest

TOOLS = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"
SHELLS = ("bash", "zsh", "fish")
STATES = {"queued", "running", "succeeded", "failed", "canceled"}

BASH_DRIVER = r'''
source "$RQ_BASH_COMPLETION" || exit 90
if [[ $RQ_PLAIN ]]; then
        # The completion the same line gets as a command of its own.
        func=_command_offset
        set -- 0
else
        source "$RQ_SCRIPT" || exit 91
        spec=$(complete -p ringq) || exit 92
        func=${spec##*-F }
        func=${func%% *}
        set --
fi
COMP_WORDS=("${RQ_WORDS[@]}")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMP_LINE=$RQ_LINE
COMP_POINT=${#COMP_LINE}
COMP_TYPE=9
COMP_KEY=9
if [[ $RQ_PLAIN ]]; then
        "$func" 0
else
        "$func" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
fi
printf '%s\n' "${COMPREPLY[@]}"
'''

# Sourced by the interactive zsh: compinit, and a TAB that runs the
# completion system with compadd wrapped, so that each match it adds is
# also written, as the line would get it, to $RQ_OUT.
ZSH_SETUP = r'''
fpath=($RQ_FPATH $fpath)
# The dump, in the test's directory, spares later shells the scan of fpath.
autoload -Uz compinit && compinit -u -d $RQ_DUMP
zmodload zsh/zutil
__rq_opts() { zparseopts -E -A __rq_o P: p: O: A: D: }
compadd() {
  local -A __rq_o
  local -a __rq_hits
  local __rq_h
  __rq_opts "${@[1,${@[(i)(-|--)]}-1]}"
  # Calls that only ask which words would match add nothing.
  if (( $+__rq_o[-O] || $+__rq_o[-A] || $+__rq_o[-D] )); then
    builtin compadd "$@"
    return
  fi
  builtin compadd -A __rq_hits "$@"
  for __rq_h in $__rq_hits; do
    print -r -- "$IPREFIX$__rq_o[-P]$__rq_o[-p]$__rq_h" >> $RQ_OUT
  done
  builtin compadd "$@"
}
__rq_complete() {
  : >| $RQ_OUT
  _main_complete
  print -r -- '<<done>>' >> $RQ_OUT
}
zle -C __rq_complete complete-word __rq_complete
bindkey '^I' __rq_complete
print -r -- '<<ready>>' >> $RQ_OUT
'''


def bash_words(line):
    """COMP_WORDS for line: readline splits at blanks and at the
    COMP_WORDBREAKS characters = and : (no quotes in these tests)."""
    words = re.findall(r"[=:]|[^\s=:]+", line)
    if not line or line[-1].isspace():
        words.append("")
    return words


class Result:
    def __init__(self, matches, errors, seconds):
        self.matches = matches  # the words offered, in the shell's order
        self.errors = errors  # what reached stderr or the terminal
        self.seconds = seconds

    def __repr__(self):
        return "Result(%r, errors=%r, %.2fs)" % (self.matches, self.errors, self.seconds)


class Shells:
    """Completes a line in each shell, ringq found on PATH."""

    def __init__(self, root):
        self.root = root
        ringq = shutil.which(RINGQ)
        assert ringq, "ringq not found: %s" % RINGQ
        home = os.path.join(root, "home")
        os.makedirs(home, exist_ok=True)
        # A home of its own: no one's rc files, history or caches.
        self.env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"),
                        XDG_DATA_HOME=os.path.join(home, ".local/share"),
                        XDG_CACHE_HOME=os.path.join(home, ".cache"),
                        PATH=os.path.dirname(os.path.abspath(ringq)) + os.pathsep + os.environ.get("PATH", ""))
        self.env.pop("RINGQ_SOCKET", None)
        self.zsh_setup = os.path.join(root, "setup.zsh")
        with open(self.zsh_setup, "w") as f:
            f.write(ZSH_SETUP)

    def complete(self, shell, line, socket=None, plain=False):
        env = dict(self.env)
        if socket is not None:
            env["RINGQ_SOCKET"] = socket
        return getattr(self, shell)(line, env, plain)

    def bash(self, line, env, plain):
        words = bash_words(line)
        env.update(RQ_BASH_COMPLETION=BASH_COMPLETION, RQ_SCRIPT=os.path.join(TOOLS, "ringq.bash"),
                   RQ_LINE=line, RQ_PLAIN="1" if plain else "")
        # The words go in as an array built from the arguments.
        script = 'RQ_WORDS=("$@")\n' + BASH_DRIVER
        t0 = time.monotonic()
        r = subprocess.run(["bash", "-c", script, "bash"] + words, capture_output=True, text=True,
                           env=env, timeout=30 * SLOW, stdin=subprocess.DEVNULL)
        seconds = time.monotonic() - t0
        if r.returncode != 0:
            raise AssertionError("bash driver exited %d for %r:\n%s" % (r.returncode, line, r.stderr))
        # _command_offset calls compopt, which outside a real completion
        # only complains; that is the driver's doing, not the script's.
        errors = "\n".join(l for l in r.stderr.splitlines()
                           if "compopt: not currently executing completion function" not in l)
        return Result([m for m in r.stdout.split("\n") if m], errors, seconds)

    def fish(self, line, env, plain):
        t0 = time.monotonic()
        r = subprocess.run(["fish", "-c", "set -p fish_complete_path $argv[1]; complete -C $argv[2]",
                            TOOLS, line], capture_output=True, text=True, env=env, timeout=30 * SLOW,
                           stdin=subprocess.DEVNULL)
        seconds = time.monotonic() - t0
        if r.returncode != 0:
            raise AssertionError("fish exited %d for %r:\n%s" % (r.returncode, line, r.stderr))
        return Result([m.split("\t")[0] for m in r.stdout.split("\n") if m], r.stderr, seconds)

    def zsh(self, line, env, plain):
        out = os.path.join(self.root, "zsh.out")
        if os.path.exists(out):
            os.unlink(out)
        env.update(TERM="xterm", RQ_OUT=out, RQ_FPATH=TOOLS, RQ_DUMP=os.path.join(self.root, "zcompdump"))
        pid, fd = pty.fork()
        if pid == 0:
            try:
                os.execvpe("zsh", ["zsh", "-f", "-i"], env)
            finally:
                os._exit(127)
        screen = []

        def read_until(token, timeout):
            deadline = time.monotonic() + timeout * SLOW
            while time.monotonic() < deadline:
                ready, _, _ = select.select([fd], [], [], 0.02)
                if ready:
                    try:
                        screen.append(os.read(fd, 65536))
                    except OSError:
                        break
                try:
                    with open(out) as f:
                        text = f.read()
                except FileNotFoundError:
                    continue
                if token in text:
                    return text
            raise AssertionError("zsh: no %s for %r; terminal:\n%s" %
                                 (token, line, b"".join(screen).decode(errors="replace")))

        try:
            os.write(fd, b"source %s\n" % self.zsh_setup.encode())
            read_until("<<ready>>", 20)
            # What zsh echoed so far is not the completion's.
            screen.clear()
            t0 = time.monotonic()
            os.write(fd, line.encode() + b"\t")
            text = read_until("<<done>>", 20)
            seconds = time.monotonic() - t0
            # Let whatever the completion printed reach the terminal.
            end = time.monotonic() + 0.2
            while time.monotonic() < end:
                ready, _, _ = select.select([fd], [], [], 0.05)
                if ready:
                    try:
                        screen.append(os.read(fd, 65536))
                    except OSError:
                        break
        finally:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(fd)
        matches = []
        for m in text.split("\n"):
            if m == "<<done>>":
                break
            if m and m not in matches:
                matches.append(m)
        # Errors on the terminal: ringq's, timeout's, zsh's own or those
        # of a completion function ("_ringq:12: ...").
        terminal = b"".join(screen).decode(errors="replace")
        errors = "\n".join(l for l in terminal.splitlines()
                           if re.search(r"(^|\s)(ringq|timeout|zsh|_ringq\w*:\d+):", l))
        return Result(matches, errors, seconds)


def help_verbs():
    out = subprocess.run([RINGQ, "--help"], capture_output=True, text=True, check=True).stdout
    block = out.split("Verbs:\n", 1)[1].split("\n\n", 1)[0]
    return [l.split()[0] for l in block.splitlines()]


def help_options(*verb):
    """Every option `ringq [VERB] --help` lists, short and long."""
    out = subprocess.run([RINGQ, *verb, "--help"], capture_output=True, text=True, check=True).stdout
    opts = set()
    for m in re.finditer(r"^ {2,6}(?:(-\w), )?(--[\w-]+)", out, re.M):
        opts.update(o for o in m.groups() if o)
    return opts


class ScriptsLoad(unittest.TestCase):
    def test_syntax(self):
        for cmd in (["bash", "-n", os.path.join(TOOLS, "ringq.bash")],
                    ["zsh", "-n", os.path.join(TOOLS, "_ringq")],
                    ["fish", "--no-execute", os.path.join(TOOLS, "ringq.fish")]):
            with self.subTest(cmd=cmd[0]):
                r = subprocess.run(cmd, capture_output=True, text=True)
                self.assertEqual((r.returncode, r.stderr), (0, ""))

    def test_bash_completion_present(self):
        # ringq.bash needs it (_init_completion, _filedir, _command_offset);
        # the package installs it in the directory bash-completion loads.
        self.assertTrue(os.path.exists(BASH_COMPLETION), "bash-completion is not installed")

    def test_sourced_quietly(self):
        with tempfile.TemporaryDirectory() as home:
            env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=home, XDG_DATA_HOME=home)
            r = subprocess.run(["bash", "-c", 'source "$1" && source "$2" && complete -p ringq', "bash",
                                BASH_COMPLETION, os.path.join(TOOLS, "ringq.bash")],
                               capture_output=True, text=True, env=env)
            self.assertEqual((r.returncode, r.stderr), (0, ""))
            self.assertIn("-F _ringq", r.stdout)
            r = subprocess.run(["fish", "-c", "source $argv[1]; and complete -c ringq | count",
                                os.path.join(TOOLS, "ringq.fish")], capture_output=True, text=True, env=env)
            self.assertEqual((r.returncode, r.stderr), (0, ""))
            self.assertGreater(int(r.stdout), 20)
            r = subprocess.run(["zsh", "-f", "-c", 'fpath=($1 $fpath); autoload -Uz compinit && compinit -u -D'
                                ' && print -r -- $_comps[ringq]', "zsh", TOOLS],
                               capture_output=True, text=True, env=env)
            self.assertEqual((r.returncode, r.stderr, r.stdout), (0, "", "_ringq\n"))


class InstallRules(unittest.TestCase):
    def test_installed_where_each_shell_looks(self):
        build = os.path.dirname(os.path.abspath(shutil.which(RINGQ)))
        self.assertTrue(os.path.exists(os.path.join(build, "CMakeCache.txt")), "ringq is not in a build dir")
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            cache = f.read()
        prefix = re.search(r"^CMAKE_INSTALL_PREFIX:\w+=(.*)$", cache, re.M).group(1)
        with tempfile.TemporaryDirectory() as dest:
            r = subprocess.run(["cmake", "--install", build], capture_output=True, text=True,
                               env=dict(os.environ, DESTDIR=dest))
            self.assertEqual(r.returncode, 0, r.stderr)
            share = dest + prefix + "/share"
            for path, src in (("bash-completion/completions/ringq", "ringq.bash"),
                              ("zsh/vendor-completions/_ringq", "_ringq"),
                              ("fish/vendor_completions.d/ringq.fish", "ringq.fish")):
                with self.subTest(path=path):
                    with open(os.path.join(share, path)) as f, open(os.path.join(TOOLS, src)) as g:
                        self.assertEqual(f.read(), g.read())


class Completion(DaemonTest):
    daemon_kwargs = {"workers": 2}

    def setUp(self):
        super().setUp()
        self.shells = Shells(self.d.root)
        self.done_ok = self.d.submit(["true"])
        self.d.wait_job(self.done_ok)
        self.done_bad = self.d.submit(["false"])
        self.d.wait_job(self.done_bad)
        self.run_a = self.d.submit(["sleep", "600"], queue="batch")
        self.run_b = self.d.submit(["sleep", "600"], queue="nightly")
        self.d.wait_state(self.run_a, "running")
        self.d.wait_state(self.run_b, "running")
        self.queued = self.d.submit(["sleep", "600"], queue="nightly")
        for jid in (self.run_a, self.run_b, self.queued):
            self.addCleanup(self.d.call, {"op": "cancel", "id": jid})
        self.all_ids = [self.queued, self.run_b, self.run_a, self.done_bad, self.done_ok]

    def complete(self, shell, line, socket="daemon", plain=False):
        r = self.shells.complete(shell, line, self.d.sock if socket == "daemon" else socket, plain)
        self.assertEqual(r.errors, "", "%s: %r printed errors" % (shell, line))
        return r

    def test_verbs(self):
        verbs = help_verbs()
        self.assertIn("submit", verbs)
        for shell in SHELLS:
            with self.subTest(shell=shell):
                self.assertEqual(sorted(self.complete(shell, "ringq ").matches), sorted(verbs))
                self.assertEqual(sorted(self.complete(shell, "ringq s").matches), ["stats", "status", "submit"])
                self.assertEqual(self.complete(shell, "ringq ad").matches, ["admin"])
                self.assertEqual(sorted(self.complete(shell, "ringq help ").matches), sorted(verbs))
                # The options before the verb.
                self.assertEqual(set(self.complete(shell, "ringq -").matches), help_options())

    def test_every_option_of_every_verb(self):
        for verb in help_verbs():
            if verb == "help":
                continue
            opts = help_options(verb)
            self.assertIn("--socket", opts)
            for shell in SHELLS:
                with self.subTest(shell=shell, verb=verb):
                    got = set(self.complete(shell, "ringq %s -" % verb).matches)
                    self.assertEqual(opts - got, set(), "options not offered")
                    self.assertEqual({m for m in got if m != "--"} - opts, set(), "options ringq lacks")

    def test_job_ids(self):
        for shell in SHELLS:
            with self.subTest(shell=shell):
                r = self.complete(shell, "ringq status ")
                self.assertEqual(r.matches, [str(i) for i in self.all_ids], "not all, or not newest first")
                r = self.complete(shell, "ringq logs --stderr ")
                self.assertEqual(sorted(r.matches), sorted(str(i) for i in self.all_ids))
                # What each verb can act on.
                r = self.complete(shell, "ringq cancel ")
                self.assertEqual(sorted(r.matches), sorted(str(i) for i in (self.run_a, self.run_b, self.queued)))
                r = self.complete(shell, "ringq wait %d " % self.run_a)
                self.assertEqual(sorted(r.matches), sorted(str(i) for i in (self.run_a, self.run_b, self.queued)))
                r = self.complete(shell, "ringq retry ")
                self.assertEqual(r.matches, [str(self.done_bad)])
                # status takes one id (zsh offers the options then).
                r = self.complete(shell, "ringq status %d " % self.queued)
                self.assertEqual([m for m in r.matches if not m.startswith("-")], [])
                # submit --after takes a list: the ids not in it yet.
                r = self.complete(shell, "ringq submit --after %d," % self.done_ok)
                self.assertEqual(sorted(r.matches),
                                 sorted("%d,%d" % (self.done_ok, i) for i in self.all_ids if i != self.done_ok))

    def test_admin_commands(self):
        for shell in SHELLS:
            with self.subTest(shell=shell):
                self.assertEqual(self.complete(shell, "ringq admin ").matches, ["reexec"])
                self.assertEqual(self.complete(shell, "ringq admin re").matches, ["reexec"])
                self.assertEqual(self.complete(shell, "ringq --json admin ").matches, ["reexec"])
                # One command (zsh offers the options then).
                r = self.complete(shell, "ringq admin reexec ")
                self.assertEqual([m for m in r.matches if not m.startswith("-")], [])

    def test_socket_from_command_line(self):
        nowhere = os.path.join(self.d.root, "nowhere.sock")
        for shell in SHELLS:
            with self.subTest(shell=shell):
                # RINGQ_SOCKET names no ringqd: the ids come from -s.
                self.assertEqual(self.complete(shell, "ringq status ", socket=nowhere).matches, [])
                for line in ("ringq -s %s status ", "ringq --socket %s cancel ", "ringq --socket=%s cancel ",
                             "ringq cancel -s %s "):
                    r = self.complete(shell, line % self.d.sock, socket=nowhere)
                    self.assertIn(str(self.queued), r.matches, line)
                # And a -s naming nothing wins over RINGQ_SOCKET.
                r = self.complete(shell, "ringq -s %s status " % nowhere)
                self.assertEqual(r.matches, [])
                r = self.complete(shell, "ringq submit -s %s -q " % self.d.sock, socket=nowhere)
                self.assertIn("nightly", r.matches)

    def test_queues(self):
        for shell in SHELLS:
            with self.subTest(shell=shell):
                for line in ("ringq submit -q ", "ringq submit --queue ", "ringq list -q ", "ringq pause "):
                    r = self.complete(shell, line)
                    self.assertEqual(sorted(r.matches), ["batch", "default", "nightly"], line)
                self.assertEqual(self.complete(shell, "ringq submit -q ni").matches, ["nightly"])
                # resume takes one queue (zsh offers the options then).
                r = self.complete(shell, "ringq resume batch ")
                self.assertEqual([m for m in r.matches if not m.startswith("-")], [])

    def test_states(self):
        for shell in SHELLS:
            with self.subTest(shell=shell):
                self.assertEqual(set(self.complete(shell, "ringq list --state ").matches), STATES)
                r = self.complete(shell, "ringq list --state f")
                self.assertEqual(r.matches, ["failed"])
                # Durations are free text: nothing to offer, not even files.
                self.assertEqual(self.complete(shell, "ringq submit --delay ").matches, [])

    def test_submit_command_completes_as_a_command_line(self):
        for shell in SHELLS:
            for line in ("ls /us", "kill -", "sle"):
                with self.subTest(shell=shell, line=line):
                    plain = self.complete(shell, line, plain=True).matches
                    self.assertNotEqual(plain, [], "the line itself completes to nothing")
                    for prefix in ("ringq submit -- ", "ringq submit -q nightly --wait -- ", "ringq submit "):
                        r = self.complete(shell, prefix + line)
                        self.assertEqual(sorted(r.matches), sorted(plain), prefix + line)
                        # Options only ringq has (kill has a --queue).
                        self.assertFalse({"--priority", "--block-timeout", "--attempts"} & set(r.matches))
                    if line == "ls /us":
                        self.assertTrue({"/usr", "/usr/"} & set(plain), plain)
                    if line == "sle":
                        self.assertIn("sleep", plain)

    def test_no_daemon(self):
        nowhere = os.path.join(self.d.root, "nowhere.sock")
        for shell in SHELLS:
            for line in ("ringq status ", "ringq cancel ", "ringq submit -q ", "ringq pause "):
                with self.subTest(shell=shell, line=line):
                    r = self.shells.complete(shell, line, nowhere)
                    self.assertEqual(r.errors, "")
                    got = set(r.matches) - {"default"}
                    self.assertEqual(got, set())
                    self.assertLess(r.seconds, 3 * SLOW, "slow without a daemon")

    def test_stopped_daemon(self):
        # A ringqd that accepts but never answers: the completion gives up
        # after its second.
        os.kill(self.d.pid(), signal.SIGSTOP)
        self.addCleanup(os.kill, self.d.pid(), signal.SIGCONT)
        for shell in SHELLS:
            with self.subTest(shell=shell):
                r = self.shells.complete(shell, "ringq cancel ", self.d.sock)
                self.assertEqual((r.matches, r.errors), ([], ""))
                self.assertGreaterEqual(r.seconds, 0.9)
                self.assertLess(r.seconds, 2.5 * SLOW)


if __name__ == "__main__":
    unittest.main()
