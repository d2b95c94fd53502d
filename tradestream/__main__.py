from tradestream.cli import main

main()
