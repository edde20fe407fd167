variable "size" {
  type    = number
  default = 0

  validation {
    condition     = var.size > 0
    error_message = "The size must be positive."
  }
}

output "size" {
  value = var.size
}
