from lqer.cli import main

main()
