from pocketbench.cli import main

main()
