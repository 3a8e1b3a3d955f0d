from qa_console.cli.app import main

main()
