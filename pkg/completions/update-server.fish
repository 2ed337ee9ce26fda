# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_update_server_global_optspecs
    string join \n log-format= h/help V/version
end

function __fish_update_server_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_update_server_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_update_server_using_subcommand
    set -l cmd (__fish_update_server_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c update-server -n "__fish_update_server_needs_command" -l log-format -d 'Log line format on standard error: text, or json (one JSON object per line)' -r -f -a "text\t''
json\t''"
complete -c update-server -n "__fish_update_server_needs_command" -s h -l help -d 'Print help'
complete -c update-server -n "__fish_update_server_needs_command" -s V -l version -d 'Print version'
complete -c update-server -n "__fish_update_server_needs_command" -f -a "serve" -d 'Serve update scripts, firmware and the admin pages'
complete -c update-server -n "__fish_update_server_needs_command" -f -a "check-config" -d 'Print the merged configuration of an installation, or what is wrong with it'
complete -c update-server -n "__fish_update_server_needs_command" -f -a "simulate" -d 'Print the update script a device would get, without writing its state'
complete -c update-server -n "__fish_update_server_needs_command" -f -a "hash-password" -d 'Ask for a password (or read a line from standard input) and print its hash for master/@passwordhash'
complete -c update-server -n "__fish_update_server_needs_command" -f -a "rollout-plan" -d 'Print which devices (from the status directory) fall in which wave of a staged rollout, and what the rollout recorded for them; changes nothing'
complete -c update-server -n "__fish_update_server_needs_command" -f -a "completions" -d 'Print the completion script for a shell'
complete -c update-server -n "__fish_update_server_needs_command" -f -a "manpage" -d 'Print the man page'
complete -c update-server -n "__fish_update_server_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c update-server -n "__fish_update_server_using_subcommand serve" -l root -d 'The installation directory (laid out like a PHP installation)' -r -F
complete -c update-server -n "__fish_update_server_using_subcommand serve" -l prefix -d 'URL path the installation is published under, e.g. /mtls/update' -r
complete -c update-server -n "__fish_update_server_using_subcommand serve" -l http -d 'Plain HTTP listener address (repeatable). Default: 127.0.0.1:8080 when no listener is configured' -r
complete -c update-server -n "__fish_update_server_using_subcommand serve" -l https -d 'HTTPS listener address, no client certificates (repeatable)' -r
complete -c update-server -n "__fish_update_server_using_subcommand serve" -l mtls -d 'HTTPS listener that asks for a client certificate (repeatable); needs --client-ca' -r
complete -c update-server -n "__fish_update_server_using_subcommand serve" -l tls-cert -d 'Server certificate chain (PEM). Without it a self-signed one is generated in ROOT/tls/' -r -F
complete -c update-server -n "__fish_update_server_using_subcommand serve" -l tls-key -d 'Server private key (PEM)' -r -F
complete -c update-server -n "__fish_update_server_using_subcommand serve" -l client-ca -d 'CAs trusted for client certificates on --mtls listeners (PEM bundle)' -r -F
complete -c update-server -n "__fish_update_server_using_subcommand serve" -l legacy-client-certs -d 'Accept old device certificates (SHA-1 signatures, RSA keys from 1024 bits) that chain to --client-ca. Default: true, or <server legacy-client-certs=…>' -r -f -a "true\t''
false\t''"
complete -c update-server -n "__fish_update_server_using_subcommand serve" -l log-format -d 'Log line format on standard error: text, or json (one JSON object per line)' -r -f -a "text\t''
json\t''"
complete -c update-server -n "__fish_update_server_using_subcommand serve" -s h -l help -d 'Print help'
complete -c update-server -n "__fish_update_server_using_subcommand check-config" -l root -d 'The installation directory' -r -F
complete -c update-server -n "__fish_update_server_using_subcommand check-config" -l log-format -d 'Log line format on standard error: text, or json (one JSON object per line)' -r -f -a "text\t''
json\t''"
complete -c update-server -n "__fish_update_server_using_subcommand check-config" -l strict -d 'Fail (exit code 3) when there are warnings'
complete -c update-server -n "__fish_update_server_using_subcommand check-config" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c update-server -n "__fish_update_server_using_subcommand simulate" -l root -d 'The installation directory' -r -F
complete -c update-server -n "__fish_update_server_using_subcommand simulate" -l prefix -d 'URL path the installation is published under' -r
complete -c update-server -n "__fish_update_server_using_subcommand simulate" -l host -d 'Host (and port) the device would use' -r
complete -c update-server -n "__fish_update_server_using_subcommand simulate" -l log-format -d 'Log line format on standard error: text, or json (one JSON object per line)' -r -f -a "text\t''
json\t''"
complete -c update-server -n "__fish_update_server_using_subcommand simulate" -s h -l help -d 'Print help'
complete -c update-server -n "__fish_update_server_using_subcommand hash-password" -l log-format -d 'Log line format on standard error: text, or json (one JSON object per line)' -r -f -a "text\t''
json\t''"
complete -c update-server -n "__fish_update_server_using_subcommand hash-password" -s h -l help -d 'Print help'
complete -c update-server -n "__fish_update_server_using_subcommand rollout-plan" -l root -d 'The installation directory' -r -F
complete -c update-server -n "__fish_update_server_using_subcommand rollout-plan" -l log-format -d 'Log line format on standard error: text, or json (one JSON object per line)' -r -f -a "text\t''
json\t''"
complete -c update-server -n "__fish_update_server_using_subcommand rollout-plan" -s h -l help -d 'Print help'
complete -c update-server -n "__fish_update_server_using_subcommand completions" -l log-format -d 'Log line format on standard error: text, or json (one JSON object per line)' -r -f -a "text\t''
json\t''"
complete -c update-server -n "__fish_update_server_using_subcommand completions" -s h -l help -d 'Print help'
complete -c update-server -n "__fish_update_server_using_subcommand manpage" -l log-format -d 'Log line format on standard error: text, or json (one JSON object per line)' -r -f -a "text\t''
json\t''"
complete -c update-server -n "__fish_update_server_using_subcommand manpage" -s h -l help -d 'Print help'
complete -c update-server -n "__fish_update_server_using_subcommand help; and not __fish_seen_subcommand_from serve check-config simulate hash-password rollout-plan completions manpage help" -f -a "serve" -d 'Serve update scripts, firmware and the admin pages'
complete -c update-server -n "__fish_update_server_using_subcommand help; and not __fish_seen_subcommand_from serve check-config simulate hash-password rollout-plan completions manpage help" -f -a "check-config" -d 'Print the merged configuration of an installation, or what is wrong with it'
complete -c update-server -n "__fish_update_server_using_subcommand help; and not __fish_seen_subcommand_from serve check-config simulate hash-password rollout-plan completions manpage help" -f -a "simulate" -d 'Print the update script a device would get, without writing its state'
complete -c update-server -n "__fish_update_server_using_subcommand help; and not __fish_seen_subcommand_from serve check-config simulate hash-password rollout-plan completions manpage help" -f -a "hash-password" -d 'Ask for a password (or read a line from standard input) and print its hash for master/@passwordhash'
complete -c update-server -n "__fish_update_server_using_subcommand help; and not __fish_seen_subcommand_from serve check-config simulate hash-password rollout-plan completions manpage help" -f -a "rollout-plan" -d 'Print which devices (from the status directory) fall in which wave of a staged rollout, and what the rollout recorded for them; changes nothing'
complete -c update-server -n "__fish_update_server_using_subcommand help; and not __fish_seen_subcommand_from serve check-config simulate hash-password rollout-plan completions manpage help" -f -a "completions" -d 'Print the completion script for a shell'
complete -c update-server -n "__fish_update_server_using_subcommand help; and not __fish_seen_subcommand_from serve check-config simulate hash-password rollout-plan completions manpage help" -f -a "manpage" -d 'Print the man page'
complete -c update-server -n "__fish_update_server_using_subcommand help; and not __fish_seen_subcommand_from serve check-config simulate hash-password rollout-plan completions manpage help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
