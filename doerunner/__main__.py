from doerunner.cli import main

main()
