# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_multihome_global_optspecs
    string join \n c/config= v/verbose q/quiet h/help V/version
end

function __fish_multihome_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_multihome_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_multihome_using_subcommand
    set -l cmd (__fish_multihome_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c multihome -n "__fish_multihome_needs_command" -s c -l config -d 'The policy file' -r -F
complete -c multihome -n "__fish_multihome_needs_command" -s v -l verbose -d 'More log detail (the daemon and the hook): -v debug, -vv trace'
complete -c multihome -n "__fish_multihome_needs_command" -s q -l quiet -d 'Less: -q warnings and errors only, -qq errors only'
complete -c multihome -n "__fish_multihome_needs_command" -s h -l help -d 'Print help'
complete -c multihome -n "__fish_multihome_needs_command" -s V -l version -d 'Print version'
complete -c multihome -n "__fish_multihome_needs_command" -f -a "check" -d 'Validate the policy and print the plan'
complete -c multihome -n "__fish_multihome_needs_command" -f -a "render" -d 'Print the files a backend would write, or write them under --out (used as a root; never this system\'s /, and never through a symlink inside it)'
complete -c multihome -n "__fish_multihome_needs_command" -f -a "plan" -d 'Show what `apply` would change'
complete -c multihome -n "__fish_multihome_needs_command" -f -a "apply" -d 'Write the configuration and have the network manager take it'
complete -c multihome -n "__fish_multihome_needs_command" -f -a "try" -d 'Apply, then revert by itself unless confirmed (Enter, y, or SIGUSR1) within the timeout'
complete -c multihome -n "__fish_multihome_needs_command" -f -a "reset" -d 'Take away everything multihome made on this host (files, profile changes, rules, routes, sysctls) and nothing else; the policy file stays. Stop the daemon first'
complete -c multihome -n "__fish_multihome_needs_command" -f -a "dispatch" -d 'The dispatcher hook: run by nm-dispatcher (INTERFACE ACTION) and networkd-dispatcher (IFACE, STATE in the environment) on every link event'
complete -c multihome -n "__fish_multihome_needs_command" -f -a "daemon" -d 'Run the failover daemon (as multihome.service does): probe the uplinks, keep new connections on the best healthy one'
complete -c multihome -n "__fish_multihome_needs_command" -f -a "status" -d 'Show the daemon\'s view of the uplinks (exit code 5 when no daemon runs)'
complete -c multihome -n "__fish_multihome_needs_command" -f -a "force" -d 'Maintenance through the daemon: force an uplink down or up, or release it'
complete -c multihome -n "__fish_multihome_needs_command" -f -a "reload" -d 'Have the daemon reread the policy file'
complete -c multihome -n "__fish_multihome_needs_command" -f -a "lab" -d 'Show the main job in a lab: the seed\'s host in network namespaces, the policy applied by the real network manager, the daemon running, a fault injected, and the timeline of what new connections see. Needs root; touches nothing of this machine\'s own network'
complete -c multihome -n "__fish_multihome_needs_command" -f -a "init" -d 'Print a first policy made from the running network manager (NetworkManager\'s profiles over D-Bus, or systemd-networkd\'s .network files): an uplink per wired or Wi-Fi device with a default route, wired first, then in the manager\'s own order, each choice explained in a comment; what was left out is listed on stderr'
complete -c multihome -n "__fish_multihome_needs_command" -f -a "import" -d 'Print a policy made from another tool\'s configuration; every line not carried over is listed on stderr with its file and line'
complete -c multihome -n "__fish_multihome_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c multihome -n "__fish_multihome_using_subcommand check" -s c -l config -d 'The policy file' -r -F
complete -c multihome -n "__fish_multihome_using_subcommand check" -l json -d 'Print the plan as JSON'
complete -c multihome -n "__fish_multihome_using_subcommand check" -s v -l verbose -d 'More log detail (the daemon and the hook): -v debug, -vv trace'
complete -c multihome -n "__fish_multihome_using_subcommand check" -s q -l quiet -d 'Less: -q warnings and errors only, -qq errors only'
complete -c multihome -n "__fish_multihome_using_subcommand check" -s h -l help -d 'Print help'
complete -c multihome -n "__fish_multihome_using_subcommand render" -l backend -r -f -a "networkd\t''
nm-keyfile\t'NetworkManager keyfiles, for machines where NetworkManager does not run yet'"
complete -c multihome -n "__fish_multihome_using_subcommand render" -l out -r -F
complete -c multihome -n "__fish_multihome_using_subcommand render" -s c -l config -d 'The policy file' -r -F
complete -c multihome -n "__fish_multihome_using_subcommand render" -s v -l verbose -d 'More log detail (the daemon and the hook): -v debug, -vv trace'
complete -c multihome -n "__fish_multihome_using_subcommand render" -s q -l quiet -d 'Less: -q warnings and errors only, -qq errors only'
complete -c multihome -n "__fish_multihome_using_subcommand render" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c multihome -n "__fish_multihome_using_subcommand plan" -l backend -r -f -a "auto\t'The policy\'s Backend= (whose own auto is NetworkManager when it owns its name on the system bus, else systemd-networkd)'
networkd\t''
networkmanager\t''"
complete -c multihome -n "__fish_multihome_using_subcommand plan" -l root -d 'Compare with the files under this root (an image) instead of this system\'s' -r -F
complete -c multihome -n "__fish_multihome_using_subcommand plan" -s c -l config -d 'The policy file' -r -F
complete -c multihome -n "__fish_multihome_using_subcommand plan" -l json -d 'Print the changes and the plan they lead to as JSON'
complete -c multihome -n "__fish_multihome_using_subcommand plan" -s v -l verbose -d 'More log detail (the daemon and the hook): -v debug, -vv trace'
complete -c multihome -n "__fish_multihome_using_subcommand plan" -s q -l quiet -d 'Less: -q warnings and errors only, -qq errors only'
complete -c multihome -n "__fish_multihome_using_subcommand plan" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c multihome -n "__fish_multihome_using_subcommand apply" -l backend -r -f -a "auto\t'The policy\'s Backend= (whose own auto is NetworkManager when it owns its name on the system bus, else systemd-networkd)'
networkd\t''
networkmanager\t''"
complete -c multihome -n "__fish_multihome_using_subcommand apply" -l root -d 'Install under this root (an image): files only, no sysctls, no reload' -r -F
complete -c multihome -n "__fish_multihome_using_subcommand apply" -s c -l config -d 'The policy file' -r -F
complete -c multihome -n "__fish_multihome_using_subcommand apply" -l no-reload -d 'Write files and set sysctls, but do not ask networkd to reload (before it starts)'
complete -c multihome -n "__fish_multihome_using_subcommand apply" -s v -l verbose -d 'More log detail (the daemon and the hook): -v debug, -vv trace'
complete -c multihome -n "__fish_multihome_using_subcommand apply" -s q -l quiet -d 'Less: -q warnings and errors only, -qq errors only'
complete -c multihome -n "__fish_multihome_using_subcommand apply" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c multihome -n "__fish_multihome_using_subcommand try" -l backend -r -f -a "auto\t'The policy\'s Backend= (whose own auto is NetworkManager when it owns its name on the system bus, else systemd-networkd)'
networkd\t''
networkmanager\t''"
complete -c multihome -n "__fish_multihome_using_subcommand try" -l timeout -d 'How long to wait for the confirmation (a time span: 120s, 2min)' -r
complete -c multihome -n "__fish_multihome_using_subcommand try" -s c -l config -d 'The policy file' -r -F
complete -c multihome -n "__fish_multihome_using_subcommand try" -s v -l verbose -d 'More log detail (the daemon and the hook): -v debug, -vv trace'
complete -c multihome -n "__fish_multihome_using_subcommand try" -s q -l quiet -d 'Less: -q warnings and errors only, -qq errors only'
complete -c multihome -n "__fish_multihome_using_subcommand try" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c multihome -n "__fish_multihome_using_subcommand reset" -l root -d 'An image\'s root instead of this running system: its files only' -r -F
complete -c multihome -n "__fish_multihome_using_subcommand reset" -s c -l config -d 'The policy file' -r -F
complete -c multihome -n "__fish_multihome_using_subcommand reset" -l dry-run -d 'Only show what would be taken away'
complete -c multihome -n "__fish_multihome_using_subcommand reset" -s v -l verbose -d 'More log detail (the daemon and the hook): -v debug, -vv trace'
complete -c multihome -n "__fish_multihome_using_subcommand reset" -s q -l quiet -d 'Less: -q warnings and errors only, -qq errors only'
complete -c multihome -n "__fish_multihome_using_subcommand reset" -s h -l help -d 'Print help'
complete -c multihome -n "__fish_multihome_using_subcommand dispatch" -s c -l config -d 'The policy file' -r -F
complete -c multihome -n "__fish_multihome_using_subcommand dispatch" -s v -l verbose -d 'More log detail (the daemon and the hook): -v debug, -vv trace'
complete -c multihome -n "__fish_multihome_using_subcommand dispatch" -s q -l quiet -d 'Less: -q warnings and errors only, -qq errors only'
complete -c multihome -n "__fish_multihome_using_subcommand dispatch" -s h -l help -d 'Print help'
complete -c multihome -n "__fish_multihome_using_subcommand daemon" -s c -l config -d 'The policy file' -r -F
complete -c multihome -n "__fish_multihome_using_subcommand daemon" -l cleanup -d 'Do not run: remove the routes a daemon left (the unit\'s ExecStopPost, so that one that was killed or crashed leaves no routing behind), then exit'
complete -c multihome -n "__fish_multihome_using_subcommand daemon" -s v -l verbose -d 'More log detail (the daemon and the hook): -v debug, -vv trace'
complete -c multihome -n "__fish_multihome_using_subcommand daemon" -s q -l quiet -d 'Less: -q warnings and errors only, -qq errors only'
complete -c multihome -n "__fish_multihome_using_subcommand daemon" -s h -l help -d 'Print help'
complete -c multihome -n "__fish_multihome_using_subcommand status" -s c -l config -d 'The policy file' -r -F
complete -c multihome -n "__fish_multihome_using_subcommand status" -l json
complete -c multihome -n "__fish_multihome_using_subcommand status" -s v -l verbose -d 'More log detail (the daemon and the hook): -v debug, -vv trace'
complete -c multihome -n "__fish_multihome_using_subcommand status" -s q -l quiet -d 'Less: -q warnings and errors only, -qq errors only'
complete -c multihome -n "__fish_multihome_using_subcommand status" -s h -l help -d 'Print help'
complete -c multihome -n "__fish_multihome_using_subcommand force" -s c -l config -d 'The policy file' -r -F
complete -c multihome -n "__fish_multihome_using_subcommand force" -s v -l verbose -d 'More log detail (the daemon and the hook): -v debug, -vv trace'
complete -c multihome -n "__fish_multihome_using_subcommand force" -s q -l quiet -d 'Less: -q warnings and errors only, -qq errors only'
complete -c multihome -n "__fish_multihome_using_subcommand force" -s h -l help -d 'Print help'
complete -c multihome -n "__fish_multihome_using_subcommand reload" -s c -l config -d 'The policy file' -r -F
complete -c multihome -n "__fish_multihome_using_subcommand reload" -s v -l verbose -d 'More log detail (the daemon and the hook): -v debug, -vv trace'
complete -c multihome -n "__fish_multihome_using_subcommand reload" -s q -l quiet -d 'Less: -q warnings and errors only, -qq errors only'
complete -c multihome -n "__fish_multihome_using_subcommand reload" -s h -l help -d 'Print help'
complete -c multihome -n "__fish_multihome_using_subcommand lab" -l backend -d 'Default: networkd where it is installed, else NetworkManager' -r -f -a "networkd\t''
networkmanager\t''"
complete -c multihome -n "__fish_multihome_using_subcommand lab" -l fault -d 'The fault to inject on --uplink at 3 s (repaired at 9 s); silent unless given (--mode bond: link, the carrier of the primary, which the monitor of the bond sees)' -r -f -a "link\t''
silent\t''
silent6\t'Only the uplink\'s IPv6 fails silently; its IPv4 goes on'"
complete -c multihome -n "__fish_multihome_using_subcommand lab" -l uplink -r
complete -c multihome -n "__fish_multihome_using_subcommand lab" -l script -d 'A scripted sequence instead, e.g. "eth0:silent@2s, wlan1:link@4s, wlan1:repair@6s, eth0:repair@8s" (faults: link, silent, silent6)' -r
complete -c multihome -n "__fish_multihome_using_subcommand lab" -l mode -d 'routes: a table per uplink (the default). bond: one active-backup bond over the uplinks, an open TCP connection through the carrier loss and return of the primary; on a kernel without bonding it explains what it would do and exits with 6' -r -f -a "routes\t''
bond\t''"
complete -c multihome -n "__fish_multihome_using_subcommand lab" -l plot -d 'Also draw the run\'s timeline as an SVG picture into FILE: a lane per uplink with the new IPv4 and IPv6 connections and the open streams it carried, outages shaded, faults and the daemon\'s verdicts marked (--mode routes)' -r -F
complete -c multihome -n "__fish_multihome_using_subcommand lab" -s c -l config -d 'The policy file' -r -F
complete -c multihome -n "__fish_multihome_using_subcommand lab" -l no-daemon -d 'Without the failover daemon: what the network manager alone does'
complete -c multihome -n "__fish_multihome_using_subcommand lab" -s v -l verbose -d 'More log detail (the daemon and the hook): -v debug, -vv trace'
complete -c multihome -n "__fish_multihome_using_subcommand lab" -s q -l quiet -d 'Less: -q warnings and errors only, -qq errors only'
complete -c multihome -n "__fish_multihome_using_subcommand lab" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c multihome -n "__fish_multihome_using_subcommand init" -s c -l config -d 'The policy file' -r -F
complete -c multihome -n "__fish_multihome_using_subcommand init" -l write -d 'Write it to the policy file (-c, default /etc/multihome/multihome.conf) instead, only if that does not exist yet'
complete -c multihome -n "__fish_multihome_using_subcommand init" -s v -l verbose -d 'More log detail (the daemon and the hook): -v debug, -vv trace'
complete -c multihome -n "__fish_multihome_using_subcommand init" -s q -l quiet -d 'Less: -q warnings and errors only, -qq errors only'
complete -c multihome -n "__fish_multihome_using_subcommand init" -s h -l help -d 'Print help'
complete -c multihome -n "__fish_multihome_using_subcommand import; and not __fish_seen_subcommand_from ifupdown help" -s c -l config -d 'The policy file' -r -F
complete -c multihome -n "__fish_multihome_using_subcommand import; and not __fish_seen_subcommand_from ifupdown help" -s v -l verbose -d 'More log detail (the daemon and the hook): -v debug, -vv trace'
complete -c multihome -n "__fish_multihome_using_subcommand import; and not __fish_seen_subcommand_from ifupdown help" -s q -l quiet -d 'Less: -q warnings and errors only, -qq errors only'
complete -c multihome -n "__fish_multihome_using_subcommand import; and not __fish_seen_subcommand_from ifupdown help" -s h -l help -d 'Print help'
complete -c multihome -n "__fish_multihome_using_subcommand import; and not __fish_seen_subcommand_from ifupdown help" -f -a "ifupdown" -d 'ifupdown\'s interfaces(5), following its source and source-directory lines: uplinks with a gateway or DHCP in metric order (else file order), an active-backup bond as Mode=bond; the post-up ip route/ip rule lines the plan replaces are recognised and left out'
complete -c multihome -n "__fish_multihome_using_subcommand import; and not __fish_seen_subcommand_from ifupdown help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c multihome -n "__fish_multihome_using_subcommand import; and __fish_seen_subcommand_from ifupdown" -s c -l config -d 'The policy file' -r -F
complete -c multihome -n "__fish_multihome_using_subcommand import; and __fish_seen_subcommand_from ifupdown" -s v -l verbose -d 'More log detail (the daemon and the hook): -v debug, -vv trace'
complete -c multihome -n "__fish_multihome_using_subcommand import; and __fish_seen_subcommand_from ifupdown" -s q -l quiet -d 'Less: -q warnings and errors only, -qq errors only'
complete -c multihome -n "__fish_multihome_using_subcommand import; and __fish_seen_subcommand_from ifupdown" -s h -l help -d 'Print help'
complete -c multihome -n "__fish_multihome_using_subcommand import; and __fish_seen_subcommand_from help" -f -a "ifupdown" -d 'ifupdown\'s interfaces(5), following its source and source-directory lines: uplinks with a gateway or DHCP in metric order (else file order), an active-backup bond as Mode=bond; the post-up ip route/ip rule lines the plan replaces are recognised and left out'
complete -c multihome -n "__fish_multihome_using_subcommand import; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c multihome -n "__fish_multihome_using_subcommand help; and not __fish_seen_subcommand_from check render plan apply try reset dispatch daemon status force reload lab init import help" -f -a "check" -d 'Validate the policy and print the plan'
complete -c multihome -n "__fish_multihome_using_subcommand help; and not __fish_seen_subcommand_from check render plan apply try reset dispatch daemon status force reload lab init import help" -f -a "render" -d 'Print the files a backend would write, or write them under --out (used as a root; never this system\'s /, and never through a symlink inside it)'
complete -c multihome -n "__fish_multihome_using_subcommand help; and not __fish_seen_subcommand_from check render plan apply try reset dispatch daemon status force reload lab init import help" -f -a "plan" -d 'Show what `apply` would change'
complete -c multihome -n "__fish_multihome_using_subcommand help; and not __fish_seen_subcommand_from check render plan apply try reset dispatch daemon status force reload lab init import help" -f -a "apply" -d 'Write the configuration and have the network manager take it'
complete -c multihome -n "__fish_multihome_using_subcommand help; and not __fish_seen_subcommand_from check render plan apply try reset dispatch daemon status force reload lab init import help" -f -a "try" -d 'Apply, then revert by itself unless confirmed (Enter, y, or SIGUSR1) within the timeout'
complete -c multihome -n "__fish_multihome_using_subcommand help; and not __fish_seen_subcommand_from check render plan apply try reset dispatch daemon status force reload lab init import help" -f -a "reset" -d 'Take away everything multihome made on this host (files, profile changes, rules, routes, sysctls) and nothing else; the policy file stays. Stop the daemon first'
complete -c multihome -n "__fish_multihome_using_subcommand help; and not __fish_seen_subcommand_from check render plan apply try reset dispatch daemon status force reload lab init import help" -f -a "dispatch" -d 'The dispatcher hook: run by nm-dispatcher (INTERFACE ACTION) and networkd-dispatcher (IFACE, STATE in the environment) on every link event'
complete -c multihome -n "__fish_multihome_using_subcommand help; and not __fish_seen_subcommand_from check render plan apply try reset dispatch daemon status force reload lab init import help" -f -a "daemon" -d 'Run the failover daemon (as multihome.service does): probe the uplinks, keep new connections on the best healthy one'
complete -c multihome -n "__fish_multihome_using_subcommand help; and not __fish_seen_subcommand_from check render plan apply try reset dispatch daemon status force reload lab init import help" -f -a "status" -d 'Show the daemon\'s view of the uplinks (exit code 5 when no daemon runs)'
complete -c multihome -n "__fish_multihome_using_subcommand help; and not __fish_seen_subcommand_from check render plan apply try reset dispatch daemon status force reload lab init import help" -f -a "force" -d 'Maintenance through the daemon: force an uplink down or up, or release it'
complete -c multihome -n "__fish_multihome_using_subcommand help; and not __fish_seen_subcommand_from check render plan apply try reset dispatch daemon status force reload lab init import help" -f -a "reload" -d 'Have the daemon reread the policy file'
complete -c multihome -n "__fish_multihome_using_subcommand help; and not __fish_seen_subcommand_from check render plan apply try reset dispatch daemon status force reload lab init import help" -f -a "lab" -d 'Show the main job in a lab: the seed\'s host in network namespaces, the policy applied by the real network manager, the daemon running, a fault injected, and the timeline of what new connections see. Needs root; touches nothing of this machine\'s own network'
complete -c multihome -n "__fish_multihome_using_subcommand help; and not __fish_seen_subcommand_from check render plan apply try reset dispatch daemon status force reload lab init import help" -f -a "init" -d 'Print a first policy made from the running network manager (NetworkManager\'s profiles over D-Bus, or systemd-networkd\'s .network files): an uplink per wired or Wi-Fi device with a default route, wired first, then in the manager\'s own order, each choice explained in a comment; what was left out is listed on stderr'
complete -c multihome -n "__fish_multihome_using_subcommand help; and not __fish_seen_subcommand_from check render plan apply try reset dispatch daemon status force reload lab init import help" -f -a "import" -d 'Print a policy made from another tool\'s configuration; every line not carried over is listed on stderr with its file and line'
complete -c multihome -n "__fish_multihome_using_subcommand help; and not __fish_seen_subcommand_from check render plan apply try reset dispatch daemon status force reload lab init import help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c multihome -n "__fish_multihome_using_subcommand help; and __fish_seen_subcommand_from import" -f -a "ifupdown" -d 'ifupdown\'s interfaces(5), following its source and source-directory lines: uplinks with a gateway or DHCP in metric order (else file order), an active-backup bond as Mode=bond; the post-up ip route/ip rule lines the plan replaces are recognised and left out'
