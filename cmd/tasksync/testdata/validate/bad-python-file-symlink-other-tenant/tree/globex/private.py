print("globex private")
