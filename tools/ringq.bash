# bash completion for ringq
_ringq()
{
        local cur prev verb i
        COMPREPLY=()
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD-1]}
        local verbs="submit status list cancel retry wait logs stats top ping help"
        local common="-s --socket --json -h --help"

        for ((i = 1; i < COMP_CWORD; i++)); do
                case ${COMP_WORDS[i]} in
                -s|--socket) ((i++)) ;;
                -*) ;;
                *) verb=${COMP_WORDS[i]}; break ;;
                esac
        done

        case $prev in
        -s|--socket|--batch) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        -C|--cwd) COMPREPLY=($(compgen -d -- "$cur")); return ;;
        --state) COMPREPLY=($(compgen -W "queued running succeeded failed canceled" -- "$cur")); return ;;
        esac

        if [ -z "$verb" ]; then
                COMPREPLY=($(compgen -W "$verbs $common --version" -- "$cur"))
                return
        fi
        local opts
        case $verb in
        submit) opts="-q --queue -p --priority --delay --timeout --attempts --backoff --key --no-env -C --cwd --wait --block --block-timeout --batch" ;;
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
        fi
}
complete -F _ringq ringq
