import sys
print("cleaning", sys.argv[1:])
