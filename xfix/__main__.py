from xfix.cli import main

main()
