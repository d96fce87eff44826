print("kt")
