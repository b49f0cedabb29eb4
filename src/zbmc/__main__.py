from zbmc.cli.main import main

main()
