from hosting.cli import main

main()
