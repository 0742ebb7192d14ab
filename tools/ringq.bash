# bash completion for ringq

# Queue names from ringqd, on the socket the command line names: quietly,
# and for a second at most, as a completion must never hang the shell.
_ringq_queues()
{
        local sock=() i
        for ((i = 1; i < COMP_CWORD; i++)); do
                case ${COMP_WORDS[i]} in
                -s|--socket) sock=(-s "${COMP_WORDS[i+1]}") ;;
                esac
        done
        timeout 1 "${COMP_WORDS[0]}" "${sock[@]}" queues --json 2>/dev/null </dev/null |
                grep -o '"name":"[A-Za-z0-9_.-]*"' | sed 's/^"name":"//; s/"$//'
}

_ringq()
{
        local cur prev verb i nargs=0
        COMPREPLY=()
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD-1]}
        local verbs="submit status list cancel retry wait logs stats top queues pause resume ping help"
        local common="-s --socket --json -h --help"

        for ((i = 1; i < COMP_CWORD; i++)); do
                case ${COMP_WORDS[i]} in
                -s|--socket) ((i++)) ;;
                -*) ;;
                *) verb=${COMP_WORDS[i]}; break ;;
                esac
        done
        # Words after the verb that are not options (pause and resume take
        # one queue).
        for ((i++; i < COMP_CWORD; i++)); do
                case ${COMP_WORDS[i]} in
                -s|--socket) ((i++)) ;;
                -*) ;;
                *) ((nargs++)) ;;
                esac
        done

        case $prev in
        -s|--socket|--batch) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        -C|--cwd) COMPREPLY=($(compgen -d -- "$cur")); return ;;
        --state) COMPREPLY=($(compgen -W "queued running succeeded failed canceled" -- "$cur")); return ;;
        -q|--queue) COMPREPLY=($(compgen -W "$(_ringq_queues)" -- "$cur")); return ;;
        # Values there is nothing to complete for (and not a command).
        -p|--priority|--delay|--timeout|--attempts|--backoff|--key|--block-timeout|--after|-n|--limit|--interval|--iterations) return ;;
        esac

        if [ -z "$verb" ]; then
                COMPREPLY=($(compgen -W "$verbs $common --version" -- "$cur"))
                return
        fi
        local opts
        case $verb in
        submit) opts="-q --queue -p --priority --delay --timeout --attempts --backoff --key --no-env -C --cwd --wait --block --block-timeout --batch --after" ;;
        list) opts="--state -q --queue -n --limit --after" ;;
        wait) opts="--timeout" ;;
        logs) opts="--stderr -f --follow" ;;
        stats) opts="--prometheus" ;;
        top) opts="--interval -n --iterations" ;;
        help) COMPREPLY=($(compgen -W "$verbs" -- "$cur")); return ;;
        esac
        if [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W "$opts $common" -- "$cur"))
        elif [ "$verb" = submit ]; then
                COMPREPLY=($(compgen -c -- "$cur"))
        elif [ "$verb" = pause ] || [ "$verb" = resume ]; then
                ((nargs == 0)) && COMPREPLY=($(compgen -W "$(_ringq_queues)" -- "$cur"))
        fi
}
complete -F _ringq ringq
