print("another tenant's script")
