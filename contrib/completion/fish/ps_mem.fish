# fish completion for ps_mem.
#
# Installed as share/fish/vendor_completions.d/ps_mem.fish, where fish looks
# for completions of commands it did not ship.

# Pids for -p, which takes a comma-separated list: the pids of --procfs's
# directory where the line names one, else of /proc, each described by its
# status Name.  Kernel threads and zombies (an empty command line, no memory)
# are left out, and so are the pids already in the list.
function __ps_mem_pids
    set -l root /proc
    set -l words (commandline -opc)
    for i in (seq (count $words))
        switch $words[$i]
            case --procfs
                set -q words[(math $i + 1)]; and set root $words[(math $i + 1)]
            case '--procfs=*'
                set root (string replace -- --procfs= '' $words[$i])
        end
    end
    set root (string replace -r -- '^~' $HOME $root)
    # A capture file holds pids too, but listing them means unpacking it.
    test -d $root; or return
    # What is typed of the list, after the option where it is attached
    # ("-p12,", "-sp12,").
    set -l typed (commandline -ct)
    set -l option (string match -r -- '^-[sdtS]*p' $typed)
    set typed (string replace -r -- '^-[sdtS]*p' '' $typed)
    set -l listed (string split , -- $typed)
    set -e listed[-1]
    set -l head "$option"(string join , -- $listed)
    test -n "$listed"; and set head $head,
    # fish's globs know no [0-9].
    for pid in (string match -r '^[0-9]+$' -- (path basename $root/*))
        set -l dir $root/$pid
        contains -- $pid $listed; and continue
        # fish warns of a failed redirection whatever 2> says: test first,
        # so that only a process exiting in between can bring a warning.
        set -l first
        test -r $dir/cmdline; and read -z -n 1 first <$dir/cmdline
        test -n "$first"; or continue
        set -l name
        test -r $dir/status; and read -l name <$dir/status
        # A name is whatever its process chose: only letters, marks,
        # numbers, punctuation, symbols and spaces reach the terminal (not
        # controls, C1, format characters, nor bytes that are not UTF-8).
        set name (string replace -r '^Name:\t' '' -- $name \
            | string replace -ra '[^\p{L}\p{M}\p{N}\p{P}\p{S} ]' '?')
        printf '%s%s\t%s\n' "$head" $pid "$name"
    end
end

complete -c ps_mem -f
complete -c ps_mem -s h -l help -d 'Show the help and exit'
complete -c ps_mem -l version -d 'Print the version and exit'
complete -c ps_mem -s s -l split-args -d 'Group by the whole command line'
complete -c ps_mem -l show-cmdline -d 'Group by the whole command line'
complete -c ps_mem -s t -l total -d 'Show only the total, in bytes'
complete -c ps_mem -s d -l discriminate-by-pid -d 'One row per process'
complete -c ps_mem -s S -l swap -d 'Show swap too'
complete -c ps_mem -s p -x -a '(__ps_mem_pids)' -d 'Only these processes'
complete -c ps_mem -s w -x -d 'A new sample every N seconds'
complete -c ps_mem -l procfs -r -F -d 'Read another proc root or a capture'
complete -c ps_mem -l json -d 'Print JSON instead of the table'
complete -c ps_mem -l sort -x -d 'Order of the rows' -a "ram\t'RAM used (the default)'
    private\tPrivate shared\tShared swap\tSwap count\t'Number of processes' name\tName"
complete -c ps_mem -l reverse -d 'Largest first'
complete -c ps_mem -l top -x -d 'Only the N largest rows'
complete -c ps_mem -l group-by -x -d 'What a row is' -a "program\t'Program (the default)'
    pid\t'Process, as -d' cmdline\t'Command line, as -s' user\t'Real user'
    cgroup\t'Control group' app\t'Application an interpreter runs' mapping\t'Mapped file'"
complete -c ps_mem -l capture -r -F -d 'Also save what this run read'
complete -c ps_mem -l system -d 'A ledger of all of MemTotal'
complete -c ps_mem -l diff -r -F -d 'Compare with an earlier capture'
complete -c ps_mem -l delta -d "Each row's change since a watch's first sample"
complete -c ps_mem -l units -x -d 'Print every size in this unit' -a "B\tBytes KiB\tKibibytes
    MiB\tMebibytes GiB\tGibibytes"
complete -c ps_mem -l no-header -d 'Rows only, no header or footer'
complete -c ps_mem -l prometheus -d "Print Prometheus' text exposition format"
complete -c ps_mem -l output -r -F -d 'Write the output to this file, atomically'
