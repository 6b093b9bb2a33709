
#compdef xfix

_xfix_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _XFIX_COMPLETE=complete_zsh xfix)
}

compdef _xfix_completion xfix
