# bash completion for ringq (ringq(1)). It needs bash-completion, which
# loads it from its completions directory the first time ringq is
# completed; the zsh and fish completions (_ringq, ringq.fish) follow the
# same rules.

# ringq on the socket the command line names (else $RINGQ_SOCKET or the
# default, as ringq itself picks): for a second at most and with nothing on
# the terminal, as a completion must never hang the shell or write on it.
# Reads _ringq's locals ringq_self and ringq_sock.
_ringq_call()
{
        timeout 1 "$ringq_self" "${ringq_sock[@]}" "$@" 2>/dev/null </dev/null
}

# Queue names: those ringqd lists (queues with jobs, settings or a pause)
# and default, which every submit without -q goes to.
_ringq_queues()
{
        {
                echo default
                _ringq_call queues --json | grep -o '"name":"[A-Za-z0-9_.-]*"' | cut -d'"' -f4
        } | sort -u
}

# Ids of jobs in any of the states given (any state when none), newest
# first: the newest 50 of each state, as ringq list gives the newest first;
# the state narrows them to the jobs a verb can act on.
_ringq_ids()
{
        local st state
        for st in "${@:-}"; do
                state=()
                [[ $st ]] && state=(--state "$st")
                # One second in all: a ringqd that did not answer the
                # first will not answer the second.
                _ringq_call list --json -n 50 "${state[@]}"
                (($? == 124)) && break
        done | grep -o '"id":[0-9]*' | cut -d: -f2 | sort -rnu
}

# Ids as COMPREPLY for cur, in the order given (newest first).
_ringq_reply_ids()
{
        local IFS=$'\n'
        COMPREPLY=($(compgen -W "$(_ringq_ids "$@")" -- "$cur"))
        compopt -o nosort 2>/dev/null
}

# Complete from words[$1] on as a command line of its own. _command_offset
# counts in COMP_WORDS, which splits at = and : where words does not: find
# the same place there. Reads _ringq's words.
_ringq_command()
{
        local want= have= j
        for ((j = 0; j < $1; j++)); do want+=${words[j]}; done
        for ((j = 0; ${#have} < ${#want} && j < COMP_CWORD; j++)); do have+=${COMP_WORDS[j]}; done
        _command_offset $j
}

_ringq()
{
        local cur prev words cword split
        _init_completion -s || return

        local verbs="submit status list cancel retry wait logs stats top queues pause resume ping admin help"
        local common="-s --socket --json -h --help"
        local states="queued running succeeded failed canceled"
        local ringq_self=${words[0]} ringq_sock=() verb= npos=0 cmd_at=0 batch= endopts=
        local i w j c
        __expand_tilde_by_ref ringq_self

        # The words before the cursor as getopt_long reads them: options
        # before the verb and in it (with their values), the verb, its
        # arguments, and for submit where the command starts (the first
        # word that is not an option, or the word after --).
        for ((i = 1; i < cword; i++)); do
                w=${words[i]}
                if [[ ! $endopts && $w == -?* ]]; then
                        case $w in
                        --)
                                endopts=1
                                [[ $verb == submit ]] && { cmd_at=$((i + 1)); break; }
                                ;;
                        --socket=*) ringq_sock=(-s "${w#*=}") ;;
                        --socket) ringq_sock=(-s "${words[i + 1]}"); ((i++)) ;;
                        --batch | --batch=*) batch=1; [[ $w == --batch ]] && ((i++)) ;;
                        --*=*) ;;
                        --queue | --priority | --delay | --timeout | --attempts | --backoff | --key | --cwd | \
                        --block-timeout | --after | --before | --state | --user | --limit | --interval | \
                        --iterations) ((i++)) ;;
                        --*) ;;
                        *)
                                # A cluster of short options: the first that
                                # takes a value takes the rest of the word,
                                # or the next word.
                                for ((j = 1; j < ${#w}; j++)); do
                                        c=${w:j:1}
                                        [[ $c == [sqpCn] ]] || continue
                                        if ((j + 1 < ${#w})); then
                                                [[ $c == s ]] && ringq_sock=(-s "${w:j+1}")
                                        else
                                                [[ $c == s ]] && ringq_sock=(-s "${words[i + 1]}")
                                                ((i++))
                                        fi
                                        break
                                done
                                ;;
                        esac
                        continue
                fi
                if [[ ! $verb ]]; then
                        verb=$w
                        endopts=
                elif [[ $verb == submit ]]; then
                        cmd_at=$i
                        break
                else
                        ((npos++))
                fi
        done
        ((${#ringq_sock[@]})) && __expand_tilde_by_ref 'ringq_sock[1]'

        # In submit's command: complete it as a command line of its own.
        if ((cmd_at)); then
                _ringq_command $cmd_at
                return
        fi

        # An option's value.
        case $prev in
        -s | --socket | --batch) _filedir; return ;;
        -C | --cwd) _filedir -d; return ;;
        --state) COMPREPLY=($(compgen -W "$states" -- "$cur")); return ;;
        -q | --queue) COMPREPLY=($(compgen -W "$(_ringq_queues)" -- "$cur")); return ;;
        --user) COMPREPLY=($(compgen -u -- "$cur")); return ;;
        --before) _ringq_reply_ids; return ;;
        --after)
                if [[ $verb == submit ]]; then
                        # ID[,ID...]: the last of the list, from the ids
                        # not in it yet.
                        local head=${cur%"${cur##*,}"} id
                        for id in $(_ringq_ids); do
                                [[ ,$head == *,$id,* || $id != "${cur##*,}"* ]] || COMPREPLY+=("$head$id")
                        done
                        compopt -o nosort 2>/dev/null
                else
                        _ringq_reply_ids
                fi
                return
                ;;
        # Free values: numbers, durations, keys.
        -p | --priority | --delay | --timeout | --attempts | --backoff | --key | --block-timeout | \
        -n | --limit | --interval | --iterations) return ;;
        esac
        $split && return

        if [[ ! $verb ]]; then
                if [[ $cur == -* ]]; then
                        COMPREPLY=($(compgen -W "$common -V --version" -- "$cur"))
                else
                        COMPREPLY=($(compgen -W "$verbs" -- "$cur"))
                fi
                return
        fi
        if [[ ! $endopts && $cur == -* ]]; then
                local opts=
                case $verb in
                submit) opts="-q --queue -p --priority --delay --timeout --attempts --backoff --key --no-env -C --cwd --wait --block --block-timeout --batch --after --" ;;
                list) opts="--state -q --queue --user -n --limit --before --oldest --after" ;;
                wait) opts="--timeout" ;;
                logs) opts="--stderr -f --follow" ;;
                stats) opts="--prometheus" ;;
                top) opts="--interval -n --iterations" ;;
                help) return ;;
                esac
                COMPREPLY=($(compgen -W "$opts $common" -- "$cur"))
                return
        fi
        case $verb in
        submit)
                # The command's first word, without --.
                [[ $batch ]] || _ringq_command $cword
                ;;
        status | logs) ((npos == 0)) && _ringq_reply_ids ;;
        cancel | wait) _ringq_reply_ids running queued ;;
        retry) _ringq_reply_ids failed canceled ;;
        pause | resume) ((npos == 0)) && COMPREPLY=($(compgen -W "$(_ringq_queues)" -- "$cur")) ;;
        admin) ((npos == 0)) && COMPREPLY=($(compgen -W "reexec" -- "$cur")) ;;
        help) ((npos == 0)) && COMPREPLY=($(compgen -W "$verbs" -- "$cur")) ;;
        esac
}
complete -F _ringq ringq
