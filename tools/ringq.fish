# fish completion for ringq (ringq(1)); the bash and zsh completions
# (ringq.bash, _ringq) follow the same rules.

# Where the command line is, read as getopt_long reads the words before
# the cursor. Sets __ringq_self (the ringq typed), __ringq_verb (empty
# before the verb), __ringq_npos (the verb's arguments so far),
# __ringq_sock (-s PATH when the line names a socket), __ringq_batch (1
# after --batch), __ringq_optval (1 when the cursor is at an option's
# value) and, once submit's command has started (after --, or at
# the first word that is not an option or an option's value),
# __ringq_incmd 1 and __ringq_cmd its words.
function __ringq_parse
    set -l tokens (commandline -opc)
    set -g __ringq_self (string replace -r -- '^~(?=/|$)' $HOME $tokens[1])
    set -g __ringq_verb
    set -g __ringq_npos 0
    set -g __ringq_sock
    set -g __ringq_batch 0
    set -g __ringq_optval 0
    set -g __ringq_incmd 0
    set -g __ringq_cmd
    set -l endopts 0
    set -l i 2
    set -l n (count $tokens)
    while test $i -le $n
        set -l w $tokens[$i]
        if test $endopts = 0; and string match -qr -- '^-.' $w
            switch $w
                case --
                    set endopts 1
                    if test "$__ringq_verb" = submit
                        set __ringq_incmd 1
                        set __ringq_cmd $tokens[(math $i + 1)..-1]
                        break
                    end
                case '--socket=*'
                    set __ringq_sock -s (string replace -- --socket= '' $w)
                case --socket
                    set i (math $i + 1)
                    set __ringq_sock -s $tokens[$i]
                case --batch
                    set __ringq_batch 1
                    set i (math $i + 1)
                case '--batch=*'
                    set __ringq_batch 1
                case '--*=*'
                case --queue --priority --delay --timeout --attempts --backoff --key --cwd \
                    --block-timeout --after --before --state --user --limit --interval --iterations
                    set i (math $i + 1)
                case '--*'
                case '*'
                    # A cluster of short options: the first that takes a
                    # value takes the rest of the word, or the next word.
                    set -l chars (string split '' -- (string sub -s 2 -- $w))
                    for j in (seq (count $chars))
                        contains -- $chars[$j] s q p C n; or continue
                        if test $j -lt (count $chars)
                            test $chars[$j] = s
                            and set __ringq_sock -s (string join '' -- $chars[(math $j + 1)..-1])
                        else
                            set i (math $i + 1)
                            test $chars[$j] = s
                            and set __ringq_sock -s $tokens[$i]
                        end
                        break
                    end
            end
            # The value is the word at the cursor.
            test $i -gt $n; and set __ringq_optval 1
            set i (math $i + 1)
            continue
        end
        if test -z "$__ringq_verb"
            set __ringq_verb $w
            set endopts 0
        else if test $__ringq_verb = submit
            set __ringq_incmd 1
            set __ringq_cmd $tokens[$i..-1]
            break
        else
            set __ringq_npos (math $__ringq_npos + 1)
        end
        set i (math $i + 1)
    end
    set -q __ringq_sock[2]
    and set __ringq_sock[2] (string replace -r -- '^~(?=/|$)' $HOME $__ringq_sock[2])
end

# ringq on the socket the command line names (else $RINGQ_SOCKET or the
# default, as ringq itself picks): for a second at most and with nothing on
# the terminal, as a completion must never hang the shell or write on it.
function __ringq_call
    timeout 1 $__ringq_self $__ringq_sock $argv 2>/dev/null </dev/null
end

# Ids of jobs in any of the states given (any state when none), newest
# first, described by state and command: the newest 50 of each state, as
# ringq list gives the newest first; the state narrows them to the jobs a
# verb can act on.
function __ringq_jobs
    __ringq_parse
    set -l states $argv
    set -q states[1]; or set states ''
    set -l out
    for st in $states
        set -l state
        test -n "$st"; and set state --state $st
        set -a out (__ringq_call list --json -n 50 $state)
        # One second in all: a ringqd that did not answer the first will
        # not answer the second.
        test $status -eq 124; and break
    end
    # "id":N, "state":"S" and "argv":[...] of each job, in that order.
    printf '%s\n' $out |
        grep -o -E '"id":[0-9]+|"state":"[a-z]+"|"argv":\[("([^"\\\\]|\\\\.)*",?)*\]' |
        awk '
            /^"id":/ { if (id != "") print id "\t" st ": " cmd; id = substr($0, 6); st = cmd = ""; next }
            /^"state":/ { st = substr($0, 10, length($0) - 10); next }
            { cmd = substr($0, 10, length($0) - 11); gsub(/","/, " ", cmd)
              gsub(/\\\\\\\\/, "\001", cmd); gsub(/\\\\"/, "\"", cmd); gsub(/\001/, "\\\\", cmd) }
            END { if (id != "") print id "\t" st ": " cmd }' |
        sort -k1,1nr -u
end

# Queue names: those ringqd lists (queues with jobs, settings or a pause)
# and default, which every submit without -q goes to; described by their
# jobs.
function __ringq_queues
    __ringq_parse
    set -l queues (__ringq_call queues --json |
        grep -o -E '"(name|queued|running)":("[A-Za-z0-9_.-]+"|[0-9]+)|"paused":true' |
        awk -F: '
            $1 == "\"name\"" { if (n != "") print n "\t" d; n = substr($2, 2, length($2) - 2); d = ""; next }
            $1 == "\"queued\"" { d = $2 " queued"; next }
            $1 == "\"running\"" { d = d ", " $2 " running"; next }
            { d = d ", paused" }
            END { if (n != "") print n "\t" d }')
    string match -q -- 'default	*' $queues
    or set -a queues 'default	the queue of a submit without -q'
    printf '%s\n' $queues
end

# submit --after ID[,ID...]: the ids not in the list yet, after it.
function __ringq_after
    set -l head (string replace -r -- '[^,]*$' '' (commandline -ct))
    set -l have (string split , -- (string replace -- --after= '' $head))
    for job in (__ringq_jobs)
        contains -- (string split -f1 \t -- $job) $have; or echo $head$job
    end
end

function __ringq_needs_verb
    __ringq_parse
    test -z "$__ringq_verb"
end

# The verb is one of $argv and the cursor is not in submit's command:
# its options apply.
function __ringq_verb_is
    __ringq_parse
    contains -- "$__ringq_verb" $argv; and test $__ringq_incmd = 0
end

# Before the verb or in any verb but help, and not in submit's command:
# the options every verb shares apply.
function __ringq_common
    __ringq_parse
    test "$__ringq_verb" != help -a $__ringq_incmd = 0
end

# As __ringq_verb_is, at the verb's first argument.
function __ringq_first_arg
    __ringq_verb_is $argv; and test $__ringq_npos = 0 -a $__ringq_optval = 0
end

# As __ringq_verb_is, at an argument of the verb.
function __ringq_arg
    __ringq_verb_is $argv; and test $__ringq_optval = 0
end

# In submit's command, or at its first word (not an option, and no --batch).
function __ringq_in_command
    __ringq_parse
    test "$__ringq_verb" = submit; or return
    test $__ringq_incmd = 1; and return
    test $__ringq_batch = 0 -a $__ringq_optval = 0; and not string match -q -- '-*' (commandline -ct)
end

# Complete submit's command as a command line of its own.
function __ringq_command
    __fish_complete_subcommand --commandline (string escape -- $__ringq_cmd) (commandline -ct)
end

complete -c ringq -f

# Before the verb.
complete -c ringq -n __ringq_needs_verb -s V -l version -d 'Show the version'
complete -c ringq -n __ringq_needs_verb -a submit -d 'Submit a job and print its id'
complete -c ringq -n __ringq_needs_verb -a status -d 'Show one job'
complete -c ringq -n __ringq_needs_verb -a list -d 'List jobs, newest first'
complete -c ringq -n __ringq_needs_verb -a cancel -d 'Cancel jobs'
complete -c ringq -n __ringq_needs_verb -a retry -d 'Queue failed or canceled jobs again'
complete -c ringq -n __ringq_needs_verb -a wait -d 'Wait for jobs to finish'
complete -c ringq -n __ringq_needs_verb -a logs -d "Print a job's output"
complete -c ringq -n __ringq_needs_verb -a stats -d "Show ringqd's counters and latencies"
complete -c ringq -n __ringq_needs_verb -a top -d "Show ringqd's state, queue, rates and running jobs, live"
complete -c ringq -n __ringq_needs_verb -a queues -d 'Show the queues'
complete -c ringq -n __ringq_needs_verb -a pause -d 'Start no more jobs from a queue, or from any'
complete -c ringq -n __ringq_needs_verb -a resume -d 'Start jobs from a queue, or from every queue, again'
complete -c ringq -n __ringq_needs_verb -a ping -d 'Check that ringqd answers'
complete -c ringq -n __ringq_needs_verb -a admin -d 'Operate ringqd itself (root only)'
complete -c ringq -n __ringq_needs_verb -a help -d 'Show help for ringq or a verb'

# Before the verb and in every verb but help.
complete -c ringq -n __ringq_common -s s -l socket -r -F -d "ringqd's socket"
complete -c ringq -n __ringq_common -l json -d "Print ringqd's replies as JSON"
complete -c ringq -n __ringq_common -s h -l help -d 'Show help'

# submit
set -l dur -x -d
complete -c ringq -n '__ringq_verb_is submit' -s q -l queue -x -a '(__ringq_queues)' -d Queue
complete -c ringq -n '__ringq_verb_is submit' -s p -l priority -x -d 'Priority, -1000..1000, higher runs first'
complete -c ringq -n '__ringq_verb_is submit' -l delay $dur 'Earliest start, from now (250ms, 30s, 5m, 2h, 7d)'
complete -c ringq -n '__ringq_verb_is submit' -l timeout $dur 'Kill the job after this long'
complete -c ringq -n '__ringq_verb_is submit' -l attempts -x -d 'Run at most N times'
complete -c ringq -n '__ringq_verb_is submit' -l backoff $dur 'Base delay before a retry, doubled each attempt'
complete -c ringq -n '__ringq_verb_is submit' -l key -x -d "Idempotency key: resubmitting prints the first job's id"
complete -c ringq -n '__ringq_verb_is submit' -l no-env -d 'Send neither the environment nor the umask'
complete -c ringq -n '__ringq_verb_is submit' -s C -l cwd -x -a '(__fish_complete_directories)' -d 'Working directory'
complete -c ringq -n '__ringq_verb_is submit' -l wait -d "Wait for the job(s) and exit with the job's exit code"
complete -c ringq -n '__ringq_verb_is submit' -l block -d 'When the queue is full, wait and retry'
complete -c ringq -n '__ringq_verb_is submit' -l block-timeout $dur 'Give up blocking after this long'
complete -c ringq -n '__ringq_verb_is submit' -l batch -r -F -d 'One job per non-empty line, run by /bin/sh -c'
complete -c ringq -n '__ringq_verb_is submit' -l after -x -k -a '(__ringq_after)' -d 'Start once these jobs have succeeded'
complete -c ringq -n __ringq_in_command -x -a '(__ringq_command)'

# list
complete -c ringq -n '__ringq_verb_is list' -l state -x -a 'queued running succeeded failed canceled' -d 'Only jobs in this state'
complete -c ringq -n '__ringq_verb_is list' -s q -l queue -x -a '(__ringq_queues)' -d 'Only this queue'
complete -c ringq -n '__ringq_verb_is list' -l user -x -a '(__fish_complete_users)' -d "Only this user's jobs"
complete -c ringq -n '__ringq_verb_is list' -s n -l limit -x -d 'At most N jobs'
complete -c ringq -n '__ringq_verb_is list' -l before -x -k -a '(__ringq_jobs)' -d 'Only jobs with a smaller id'
complete -c ringq -n '__ringq_verb_is list' -l oldest -d 'Oldest first'
complete -c ringq -n '__ringq_verb_is list' -l after -x -k -a '(__ringq_jobs)' -d 'Only jobs with a larger id, oldest first'

# The verbs' arguments.
complete -c ringq -n '__ringq_first_arg status logs' -k -a '(__ringq_jobs)'
complete -c ringq -n '__ringq_arg cancel wait' -k -a '(__ringq_jobs running queued)'
complete -c ringq -n '__ringq_arg retry' -k -a '(__ringq_jobs failed canceled)'
complete -c ringq -n '__ringq_verb_is wait' -l timeout $dur 'Give up after this long (exit 124)'
complete -c ringq -n '__ringq_verb_is logs' -l stderr -d "The job's stderr instead of its stdout"
complete -c ringq -n '__ringq_verb_is logs' -s f -l follow -d 'Keep printing until the job finishes'
complete -c ringq -n '__ringq_verb_is stats' -l prometheus -d 'Prometheus text exposition format'
complete -c ringq -n '__ringq_verb_is top' -l interval $dur 'Refresh period, 100ms to 30s'
complete -c ringq -n '__ringq_verb_is top' -s n -l iterations -x -d 'Stop after N refreshes'
complete -c ringq -n '__ringq_first_arg pause resume' -a '(__ringq_queues)'
complete -c ringq -n '__ringq_first_arg admin' -a reexec -d "Run ringqd's binary again in place, its jobs running on"
complete -c ringq -n '__ringq_first_arg help' -a 'submit status list cancel retry wait logs stats top queues pause resume ping admin help'
