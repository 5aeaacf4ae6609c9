# bash completion for ps_mem.
#
# Installed as share/bash-completion/completions/ps_mem, where the
# bash-completion package loads it the first time ps_mem is completed; it
# needs nothing from that package, so `source ps_mem.bash` works too.

# Every option, as ps_mem's argument parser knows them.
_ps_mem_options="-h --help --version -s --split-args --show-cmdline -t --total
    -d --discriminate-by-pid -S --swap -p -w --procfs --json --sort --reverse --top
    --group-by --capture --system --diff --delta --units --no-header --prometheus
    --output"

# The proc root the pids of -p come from: --procfs's directory where the line
# names one, else /proc.  A capture file holds pids too, but listing them
# would mean unpacking it: none are offered then.
_ps_mem_proc_root() {
    local i word root=/proc
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        if [[ $word == --procfs ]]; then
            # "--procfs=DIR" comes as three words where "=" breaks words.
            if [[ ${COMP_WORDS[i + 1]} == = ]]; then
                ((i++))
            fi
            ((i + 1 < COMP_CWORD)) && root=${COMP_WORDS[i + 1]}
        elif [[ $word == --procfs=?* ]]; then
            root=${word#--procfs=}
        fi
    done
    [[ $root == "~"* ]] && root=$HOME${root#"~"}
    [[ -d $root ]] && printf '%s\n' "$root"
}

# -p takes a comma-separated list: after "12,3" offer "12,3..." for every
# pid not yet in the list ($1 is the option where the list is attached to
# it, as in "-p12,3").  Kernel threads and zombies have an empty command
# line and no memory to show, so they are not offered.
_ps_mem_pids() {
    local option=$1 typed=$2 root listed= pid dir first
    root=$(_ps_mem_proc_root)
    [[ -n $root ]] || return
    [[ $typed == *,* ]] && listed=${typed%,*},
    for dir in "$root"/[0-9]*; do
        pid=${dir##*/}
        [[ $pid =~ ^[0-9]+$ && ,$listed != *,$pid,* && $pid == "${typed##*,}"* ]] || continue
        first=
        read -r -n 1 -d '' first < "$dir/cmdline" 2>/dev/null
        [[ -n $first ]] && COMPREPLY+=("$option$listed$pid")
    done
}

_ps_mem() {
    local cur=${COMP_WORDS[COMP_CWORD]} option=
    if ((COMP_CWORD > 0)); then
        option=${COMP_WORDS[COMP_CWORD - 1]}
    fi
    COMPREPLY=()
    # "--sort=pr" is "--sort" "=" "pr" where "=" is in COMP_WORDBREAKS (as by
    # default), and one word where it is not.
    if [[ $cur == = ]]; then
        cur=
    elif [[ $option == = ]] && ((COMP_CWORD > 1)); then
        option=${COMP_WORDS[COMP_CWORD - 2]}
    elif [[ $cur == --*=* ]]; then
        option=${cur%%=*}
        cur=${cur#*=}
    fi
    # 3.14's flags bundle with -p and -w: "-sp 12" is "-s -p 12".
    [[ $option =~ ^-[sdtS]+([pw])$ ]] && option=-${BASH_REMATCH[1]}
    case $option in
        --sort)
            mapfile -t COMPREPLY < <(compgen -W "ram private shared swap count name" -- "$cur")
            return ;;
        --group-by)
            mapfile -t COMPREPLY < <(compgen -W "program pid cmdline user cgroup app mapping" \
                -- "$cur")
            return ;;
        --units)
            mapfile -t COMPREPLY < <(compgen -W "B KiB MiB GiB" -- "$cur")
            return ;;
        -p)
            _ps_mem_pids "" "$cur"
            return ;;
        --procfs | --capture | --diff | --output)
            compopt -o filenames 2>/dev/null
            mapfile -t COMPREPLY < <(compgen -f -- "$cur")
            return ;;
        -w | --top)
            # A number: nothing to offer.
            return ;;
    esac
    if [[ $cur =~ ^(-[sdtS]*p)(.+)$ ]]; then
        _ps_mem_pids "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
        return
    fi
    # ps_mem takes no operands, so every other word is an option.
    mapfile -t COMPREPLY < <(compgen -W "$_ps_mem_options" -- "$cur")
}

complete -F _ps_mem ps_mem ps_mem.py
